"""One decoded HTML page -> image-alt-text pairs and an interleaved document (selectolax/lexbor).

Pairs are read from the whole page (LAION and cc2dataset keep every ``<img>`` with alt text).
The document is read from a simplified DOM: boilerplate elements are removed, inline elements
are unwrapped and their text merged, so every remaining text node is one block of text; images
are swapped for position markers, so a single C-level ``text()`` call returns text and images in
page order. That is the Python path, and the reference; ``extract_page_compiled`` gets the same
result from the compiled pass in ``_dom.pyx`` (one parse, one walk, no tree edits), several
times faster.
"""

import re
from dataclasses import dataclass, field

from selectolax.lexbor import LexborHTMLParser

from vlcurate.pipeline.extract.urls import base_url, image_url
from vlcurate.schemas.extract import IMAGE_NO_ALT

try:  # CPython's own MD5: the same digests as hashlib's (OpenSSL's), at half the cost per call
    from _md5 import md5
except ImportError:  # a Python built without its own hashes
    from hashlib import md5

try:  # built by `make venv` (setup.py); without it every page takes the Python path
    from vlcurate.pipeline.extract import _dom
except ImportError:
    _dom = None
# Removed with everything inside them before the document is read.
BOILERPLATE_TAGS = (
    "script style noscript template nav header footer form aside iframe svg math canvas button "
    "select input textarea label object embed menu dialog video audio map"
).split()
# Unwrapped (tag removed, text kept) so that their text joins the surrounding block.
INLINE_TAGS = (
    "a abbr acronym b bdi bdo big cite code data del dfn em font i ins kbd mark nobr q s samp "
    "small span strike strong sub sup time tt u var wbr picture"
).split()

_INLINE_SELECTOR = ",".join(INLINE_TAGS)
# C0 controls (bar whitespace, which split() collapses), DEL and U+FFFD (the parser turns NUL
# and undecodable bytes into it), dropped from text.
_STRIP_CONTROLS = dict.fromkeys([*range(0, 9), 11, 12, *range(14, 32), 127, 0xFFFD])
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")
_MAX_INT32 = 2**31 - 1


def clean_text(text: str, max_chars: int | None = None) -> str:
    """Remove control characters and collapse whitespace."""
    if _CONTROLS.search(text):
        text = text.translate(_STRIP_CONTROLS)
    text = " ".join(text.split())
    return text[:max_chars] if max_chars else text


def pair_uid(caption: str, url: str) -> str:
    """cc2dataset's uid: md5 of alt text + URL."""
    return md5((caption + url).encode("utf-8", "surrogatepass")).hexdigest()


def _dimension(value: str | None) -> int | None:
    """An ``<img width>`` attribute as an int: ``"300"`` and ``"300px"`` yes, ``"50%"`` no."""
    if not value:
        return None
    value = value.strip().lower().removesuffix("px").strip()
    if not value.isdecimal() or len(value) > 9:  # isdigit() lets "²" through, which int() refuses
        return None
    number = int(value)
    return number if 0 < number <= _MAX_INT32 else None


@dataclass(slots=True)
class PageContent:
    title: str | None
    lang: str | None
    pairs: list[dict]  # url, caption, width, height, position, uid
    nodes: list[tuple]  # ("text", text, None, None) or ("image", None, url, alt)
    image_drops: dict = field(default_factory=dict)  # reason -> images
    images_seen: int = 0


def extract_page(
    html: str | bytes, page_url: str, max_alt_chars: int = 1000, max_url_length: int = 2048
):
    """Parse one page (``str``, or UTF-8 ``bytes``) with selectolax: the Python path, and the
    reference for the compiled one. ``page_url`` must be absolute; it is the base for relative
    URLs."""
    tree = LexborHTMLParser(html)
    root = tree.root
    lang = root.attributes.get("lang") if root is not None and root.tag == "html" else None
    title_node = tree.css_first("title")
    title = title_node.text() if title_node is not None else None
    base_node = tree.css_first("base[href]")
    base_href = base_node.attributes.get("href") if base_node is not None else None
    elements = tree.css("img")
    images = [(img.attributes, _picture_sources(img)) for img in elements]
    base = base_url(page_url, base_href)
    pairs, drops, resolved = _pairs(images, base, max_alt_chars, max_url_length)
    image_of = {img.mem_id: info for img, info in zip(elements, resolved, strict=True) if info}
    nodes = _document(tree, image_of, _markers(html))
    return _content(lang, title, pairs, nodes, drops, len(images))


def extract_page_compiled(
    html: bytes,
    page_url: str,
    max_alt_chars: int = 1000,
    max_url_length: int = 2048,
    provenance: tuple | None = None,
):
    """:func:`extract_page` by the compiled pass (``_dom``): the same result, one parse and one
    walk, no tree edits. With ``provenance``, ``(source, warc_path, warc_record_id,
    warc_offset)``, each pair is a whole pair row (``page_url`` and ``page_lang`` too). Raises
    ``_dom.Refused`` for a page it declines."""
    page = _dom.ParsedPage(html)
    lang, title, base_href, images = page.head()
    lang = _lang(lang)
    row = None if provenance is None else (page_url, lang, *provenance)
    base = base_url(page_url, base_href) if base_href else page_url
    pairs, drops, resolved = _dom.image_pairs(
        images, base, max_alt_chars, max_url_length, _dimension, row
    )
    nodes = page.document(resolved)
    return PageContent(_title(title), lang, pairs, nodes, drops, len(images))


def _lang(lang: str | None) -> str | None:
    return clean_text(lang, 35).lower() or None if lang else None


def _title(title: str | None) -> str | None:
    return clean_text(title, 1000) or None if title is not None else None


def _content(lang, title, pairs, nodes, drops, images_seen: int) -> PageContent:
    return PageContent(_title(title), _lang(lang), pairs, nodes, drops, images_seen)


def _picture_sources(img) -> list[str] | None:
    """The ``srcset`` of every ``<source>`` in the ``<picture>`` around an image, if any."""
    parent = img.parent
    if parent is None or parent.tag != "picture":
        return None
    return [s.attributes.get("srcset") or "" for s in parent.css("source")]


def _pairs(images: list, base: str, max_alt_chars: int, max_url_length: int):
    """``(attributes, picture_srcsets)`` of every image element on the page -> pair rows, the
    reasons of those without a pair, and per image ``(url, alt)`` if it has a usable URL, else
    ``None`` (for the document pass)."""
    pairs, drops, resolved = [], {}, []
    for position, (attrs, extra) in enumerate(images):
        url, reason = image_url(attrs, base, extra or (), max_url_length)
        if url is None:
            drops[reason] = drops.get(reason, 0) + 1
            resolved.append(None)
            continue
        alt = clean_text(attrs.get("alt") or "", max_alt_chars)
        resolved.append((url, alt))
        if not alt:
            drops[IMAGE_NO_ALT] = drops.get(IMAGE_NO_ALT, 0) + 1
            continue
        pairs.append(
            {
                "uid": pair_uid(alt, url),
                "url": url,
                "caption": alt,
                "width": _dimension(attrs.get("width")),
                "height": _dimension(attrs.get("height")),
                "position": position,
            }
        )
    return pairs, drops, resolved


def _markers(html: str | bytes) -> tuple[str, str, str]:
    """Three private-use characters the page's text cannot hold (neither raw nor as a numeric
    character reference), to mark images and block ends in ``text()``. Almost always
    U+E000-E002; a page that uses those (icon fonts do) gets the next three."""
    for first in range(0xE000, 0xF8FF, 3):
        chars = (chr(first), chr(first + 1), chr(first + 2))
        if not any(_may_hold(html, c) for c in chars):
            return chars
    raise ValueError("page uses every private-use character")


def _may_hold(html: str | bytes, char: str) -> bool:
    raw = char if isinstance(html, str) else char.encode()
    if raw in html:
        return True
    refs = f"&#[xX]0*{ord(char):x}(?![0-9a-fA-F])|&#0*{ord(char)}(?![0-9])"
    return re.search(refs if isinstance(html, str) else refs.encode(), html, re.I) is not None


def _document(tree, image_of: dict, markers: tuple[str, str, str]) -> list[tuple]:
    """The simplified DOM: text blocks and images in page order."""
    body = tree.body
    if body is None:
        return []
    mark_open, mark_close, block_sep = markers
    tree.strip_tags(BOILERPLATE_TAGS, recursive=True)
    doc_images = []
    for img in body.css("img"):
        info = image_of.get(img.mem_id)
        if info is None:
            img.decompose()
            continue
        img.replace_with(f"{block_sep}{mark_open}{len(doc_images)}{mark_close}{block_sep}")
        doc_images.append(info)
    for inline in body.css(_INLINE_SELECTOR):  # one C-level query, faster than unwrap_tags
        inline.unwrap(delete_empty=True)  # an empty one (<wbr>, <a></a>) parts nothing
    body.merge_text_nodes()
    text = body.text(separator=block_sep, skip_empty=True)
    if _CONTROLS.search(text):
        text = text.translate(_STRIP_CONTROLS)
    marker = re.compile(f"{mark_open}(\\d+){mark_close}")
    nodes = []
    for block in text.split(block_sep):
        if mark_open in block and marker.search(block):
            pieces = marker.split(block)  # text, index, text, index, ..., text
            for i, piece in enumerate(pieces):
                if i % 2:
                    nodes.append(("image", None, *doc_images[int(piece)]))
                elif piece := " ".join(piece.split()):
                    nodes.append(("text", piece, None, None))
        elif block := " ".join(block.split()):
            nodes.append(("text", block, None, None))
    return nodes
