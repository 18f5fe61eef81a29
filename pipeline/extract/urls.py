"""Image URL discovery and resolution: src, srcset, lazy-loading attributes, <base href>."""

import re
from urllib.parse import urljoin, urlsplit

from vlcurate.schemas.extract import IMAGE_BAD_URL, IMAGE_NO_URL, IMAGE_NON_HTTP_URL

try:  # built by `make venv`; without it every URL takes the Python rules
    from vlcurate.pipeline.extract import _urls
except ImportError:
    _urls = None

# Attributes that lazy-loading libraries (lazysizes, WordPress, jQuery.lazyload, ...) put the
# real URL in, while ``src`` holds a placeholder. Checked in this order, before ``src``.
LAZY_SRCSET_ATTRS = ("data-srcset", "data-lazy-srcset")
LAZY_SRC_ATTRS = (
    "data-src",
    "data-original",
    "data-lazy-src",
    "data-lazy",
    "data-url",
    "data-original-src",
    "data-full-src",
    "data-hi-res-src",
)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HOST = re.compile(r"(?:[\w.~%!$&'()*+,;=-]+|\[[0-9A-Fa-f:.]+\])(?::\d{0,5})?")
# What only urljoin handles: controls, spaces, "\\" (_UNSAFE), and dot segments (_DOT_SEGMENT).
# Two patterns, the second tried only where "/." occurs: a plain class scans several times faster.
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")
_DOT_SEGMENT = re.compile(r"/\.\.?(?:[/?#]|$)")  # a segment ends at "/", "?", "#" or the end


_SEPARATORS = re.compile(r"[\s,]*")
_TOKEN = re.compile(r"\S+")


def _srcset_candidates(srcset: str):
    """Yield ``(url, descriptor)`` pairs of a srcset value, following the HTML parsing rules:
    candidates are parted by commas; a URL is a run of non-space characters (commas inside it
    allowed, as in Cloudinary URLs); a URL ending in commas has no descriptor, else the
    descriptor runs to the next comma. (A scan per candidate: one regex for all of it
    backtracks along every URL.)"""
    end, i = len(srcset), 0
    while True:
        i = _SEPARATORS.match(srcset, i).end()
        if i >= end:
            return
        j = _TOKEN.match(srcset, i).end()
        url = srcset[i:j]
        if url[-1] == ",":
            yield url.rstrip(","), ""
            i = j
            continue
        i = srcset.find(",", j)
        if i < 0:
            i = end
        yield url, srcset[j:i].strip().lower()


def parse_srcset(srcset: str) -> str | None:
    """Return the largest candidate of a ``srcset`` value: widest ``w``, else highest ``x``.

    >>> parse_srcset("a.jpg 480w, b.jpg 1080w, c.jpg 800w")
    'b.jpg'
    """
    if _urls is not None and (best := _urls.srcset_best(srcset)) is not False:
        return best  # the same rules in C, for ASCII values with plain-number descriptors
    best_url, best_w, best_x = None, -1.0, -1.0
    for url, descriptor in _srcset_candidates(srcset):
        try:
            if descriptor.endswith("w"):
                w = float(descriptor[:-1])
                if w > best_w:
                    best_url, best_w = url, w
            elif best_w < 0:
                x = float(descriptor[:-1]) if descriptor.endswith("x") else 1.0
                if x > best_x:
                    best_url, best_x = url, x
        except ValueError:
            continue
    return best_url


def resolve(base: str, ref: str, max_length: int = 2048) -> tuple[str | None, str | None]:
    """Resolve ``ref`` against ``base``. Returns ``(url, None)`` or ``(None, reason)``."""
    if _urls is not None and (url := _urls.resolve_fast(base, ref, max_length)) is not None:
        return url, None  # the first rule below, or a common relative form, in C
    ref = ref.strip()
    if not ref:
        return None, IMAGE_NO_URL
    head = ref[:11].lower()
    if head.startswith(("http://", "https://")) and not _needs_join(ref):
        host = ref.split("/", 3)[2].split("?", 1)[0].split("#", 1)[0]
        if _HOST.fullmatch(host) and len(ref) <= max_length:
            return ref, None  # absolute already: skip urljoin and urlsplit, the slow part
    if ":" in head and not head.startswith(("http:", "https:")):
        scheme = head.split(":", 1)[0]
        if scheme.isalpha() or scheme.replace("+", "").replace("-", "").isalnum():
            return None, IMAGE_NON_HTTP_URL  # data:, javascript:, blob:, ftp:, about:, ...
    if len(ref) > max_length:
        return None, IMAGE_BAD_URL
    url = _join_simple(base, ref)
    if url is not None:
        return (url, None) if len(url) <= max_length else (None, IMAGE_BAD_URL)
    try:
        url = urljoin(base, ref)
        parts = urlsplit(url)
    except ValueError:
        return None, IMAGE_BAD_URL
    if parts.scheme not in ("http", "https"):
        return None, IMAGE_NON_HTTP_URL
    if not parts.hostname or len(url) > max_length or _CONTROL.search(url):
        return None, IMAGE_BAD_URL
    return url, None


def _needs_join(ref: str) -> bool:
    return _UNSAFE.search(ref) is not None or ("/." in ref and _DOT_SEGMENT.search(ref) is not None)


def _join_simple(base: str, ref: str) -> str | None:
    """Resolve the common relative forms without urljoin: ``//host/p``, ``/p`` and ``p``
    (no dot segments, query-only or fragment-only refs). The base's query and fragment are
    not part of the result (RFC 3986, 5.2.2); a base path with dot segments goes to urljoin,
    which removes them. ``None`` means: use urljoin."""
    if _needs_join(ref) or ref[0] in "?#." or ":" in ref.split("/", 1)[0]:
        return None
    base = base.split("?", 1)[0].split("#", 1)[0]
    scheme_end = base.find("://")
    if scheme_end < 0:
        return None
    if ref.startswith("//"):
        host = ref[2:].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
        return base[:scheme_end] + ":" + ref if _HOST.fullmatch(host) else None
    path_start = base.find("/", scheme_end + 3)
    if path_start < 0:
        return base + ref if ref[0] == "/" else base + "/" + ref
    if _needs_join(base[path_start:]):
        return None
    if ref[0] == "/":
        return base[:path_start] + ref
    return base[: base.rfind("/") + 1] + ref


def base_url(page_url: str, base_href: str | None) -> str:
    """The URL that relative links resolve against: ``<base href>`` if usable, else the page."""
    if base_href:
        url, _ = resolve(page_url, base_href)
        if url:
            return url
    return page_url


# Attributes of an image whose only URL candidate is its ``src``.
_SRC_ONLY = frozenset(("src", "alt", "width", "height"))


def image_url(attrs: dict, base: str, extra_srcsets=(), max_length: int = 2048):
    """Pick and resolve an image element's URL. Returns ``(url, None)`` or ``(None, reason)``.

    Order: ``srcset`` (largest), lazy ``data-srcset``, lazy ``data-src``-like attributes,
    ``src``, then ``extra_srcsets`` (the ``<source>`` siblings inside a ``<picture>``). The first
    candidate that resolves to http(s) wins; otherwise the first candidate's reason is returned.
    """
    src = attrs.get("src")
    if src and not extra_srcsets and _SRC_ONLY.issuperset(attrs):
        return resolve(base, src, max_length)  # the common case, one candidate: the same answer
    candidates = []
    for name in ("srcset", *LAZY_SRCSET_ATTRS):
        value = attrs.get(name)
        if value:
            candidates.append(parse_srcset(value))
    for name in LAZY_SRC_ATTRS:
        value = attrs.get(name)
        if value:
            candidates.append(value)
    if attrs.get("src"):
        candidates.append(attrs["src"])
    candidates.extend(parse_srcset(s) for s in extra_srcsets if s)
    first_reason = IMAGE_NO_URL
    for i, ref in enumerate(c for c in candidates if c):
        url, reason = resolve(base, ref, max_length)
        if url:
            return url, None
        if i == 0:
            first_reason = reason
    return None, first_reason
