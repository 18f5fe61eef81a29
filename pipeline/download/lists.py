"""Block lists and opt-out lists, applied before anything is kept.

A **block list** (``--blocklist FILE``) holds hex MD5, SHA-1 or SHA-256 digests, one a line, as
child-safety organisations share them (Re-LAION-5B removed 2,236 links this way). A file does not
say whether a line is the digest of an image URL or of the image's bytes, so every digest is
checked against both: :meth:`Blocklist.url_blocked` before any request, and
:meth:`Blocklist.content_blocked` on the bytes in memory, before they reach any shard or file.
Both drop as :data:`BLOCKLISTED`; for a content match only the count may be recorded, never the URL.

An **opt-out list** (``--opt-out FILE``) holds domains and URL prefixes, for example exported from
Spawning's API; :meth:`OptOut.opted_out` drops a URL before any request as :data:`OPTED_OUT`.

Both run once per URL over billions of URLs, and lists can have millions of lines, so entries are
kept compact (digests as raw bytes in a set: 1M SHA-256 entries cost about 100 MB, against about
150 MB as hex text) and each check is a few set lookups (see ``tests/download/test_lists.py``
for measured costs). Files are read with fsspec (local, s3://, ...; ``.gz`` is decompressed).
"""

import bisect
import hashlib
import re
from dataclasses import dataclass, field

import fsspec

from vlcurate.pipeline.storage import InputError

BLOCKLISTED = "blocklisted"  # the URL's or the image's digest is on a block list
OPTED_OUT = "opted_out"  # the URL's domain or a prefix of it is on an opt-out list

KINDS = {32: "md5", 40: "sha1", 64: "sha256"}  # hex length -> digest kind
_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.")
_AUTHORITY_END = re.compile(r"[/?#]")
_DEFAULT_PORTS = (None, 80, 443)  # http and https alike, so either default port is no port


class ListError(InputError):
    """A block or opt-out list that cannot be read, or a bad line: ``FILE:LINE: why``."""


def _lines(path: str):
    """``(line number, text)`` of each entry: blank lines and ``#`` comments (whole lines, or
    after whitespace) skipped; a UTF-8 byte order mark is dropped. Decoded line by line, so a
    line that is not UTF-8 is named."""
    try:
        with fsspec.open(path, "rb", compression="infer") as f:
            for lineno, raw in enumerate(f, 1):
                try:
                    text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8").strip()
                except UnicodeDecodeError:
                    raise ListError(f"{path}:{lineno}: not UTF-8 text") from None
                if not text or text[0] == "#":
                    continue
                if "#" in text:
                    for mark in (" #", "\t#"):
                        text = text.split(mark, 1)[0].rstrip()
                yield lineno, text
    except FileNotFoundError:
        raise ListError(f"{path}: list not found") from None


def _authority_end(url: str, start: int) -> int:
    """Where the authority that starts at ``start`` ends: at the first ``/``, ``?`` or ``#``."""
    found = _AUTHORITY_END.search(url, start)
    return found.start() if found else len(url)


def _parts(url: str) -> tuple[str, str, int | None, str] | None:
    """``(scheme, host, port, path and query)`` of an absolute URL, read the way
    ``urllib.parse.urlsplit`` reads it (so the host is the one the fetcher connects to) at a
    fraction of its cost; the host lowercased, without a trailing dot; ``None`` if unparsable."""
    url = url.strip()
    if "\t" in url or "\n" in url or "\r" in url:
        url = url.replace("\t", "").replace("\n", "").replace("\r", "")
    colon = url.find(":")
    scheme = url[:colon]
    if colon < 1 or url[colon + 1 : colon + 3] != "//" or not _SCHEME_CHARS.issuperset(scheme):
        return None
    end = _authority_end(url, colon + 3)
    hostinfo = url[colon + 3 : end].rpartition("@")[2]
    if "[" in hostinfo:
        host, _, port = hostinfo.partition("[")[2].partition("]")
        port = port.partition(":")[2]
    else:
        host, _, port = hostinfo.partition(":")
    if port and not (port.isascii() and port.isdigit() and int(port) < 65536):
        return None
    rest = url[end:].split("#", 1)[0]
    if not rest.startswith("/"):
        rest = "/" + rest
    return scheme.lower(), host.lower().rstrip("."), int(port) if port else None, rest


def _ascii_host(host: str) -> str:
    """An IDN host as punycode (IDNA 2003, the stdlib codec), lowercase; unchanged if ASCII."""
    if host.isascii():
        return host
    return host.encode("idna").decode("ascii").lower()


@dataclass
class Blocklist:
    """Digests of image URLs or image bytes, as raw bytes, one set per kind."""

    md5: set[bytes] = field(default_factory=set)
    sha1: set[bytes] = field(default_factory=set)
    sha256: set[bytes] = field(default_factory=set)

    @classmethod
    def from_files(cls, paths: list[str]) -> "Blocklist":
        """Merge the files; a line that is not 32, 40 or 64 hex digits raises :class:`ListError`."""
        blocklist = cls()
        for path in paths:
            for lineno, text in _lines(path):
                kind = KINDS.get(len(text))
                try:
                    raw = bytes.fromhex(text) if kind else b""
                except ValueError:
                    raw = b""
                if len(raw) * 2 != len(text):  # fromhex skips inner spaces; refuse them too
                    raise ListError(
                        f"{path}:{lineno}: not a hex MD5, SHA-1 or SHA-256 digest "
                        f"(32, 40 or 64 hex digits): {text[:80]!r}"
                    )
                getattr(blocklist, kind).add(raw)
        return blocklist

    def _listed(self, data: bytes) -> bool:
        """Whether a digest of ``data`` is listed, computing only the kinds the lists hold."""
        return bool(
            (self.md5 and hashlib.md5(data).digest() in self.md5)
            or (self.sha1 and hashlib.sha1(data).digest() in self.sha1)
            or (self.sha256 and hashlib.sha256(data).digest() in self.sha256)
        )

    def url_blocked(self, url: str) -> bool:
        """Whether the digest of the URL's UTF-8 bytes is listed, either as given or normalised:
        surrounding whitespace stripped and the scheme and host lowercased (both are
        case-insensitive, so lists made from either spelling match). The path and query are kept
        as they are (case-sensitive; percent-encoding not undone); a lone surrogate passes."""
        if not (self.md5 or self.sha1 or self.sha256):
            return False
        if self._listed(url.encode("utf-8", "surrogatepass")):
            return True
        normal = _normalise(url)
        return normal != url and self._listed(normal.encode("utf-8", "surrogatepass"))

    def content_blocked(self, data: bytes) -> bool:
        """Whether the digest of the image's bytes is listed (computing only listed kinds)."""
        return self._listed(data)

    def __len__(self) -> int:
        return len(self.md5) + len(self.sha1) + len(self.sha256)

    def digest(self) -> str:
        """A short digest of the entries, for the stage's settings digest: the same for the same
        entries whatever their order, case, duplicates, comments or files."""
        h = hashlib.sha256()
        for name in ("md5", "sha1", "sha256"):
            h.update(f"{name}:{len(getattr(self, name))}\n".encode())
            for raw in sorted(getattr(self, name)):
                h.update(raw)
        return h.hexdigest()[:16]


def _normalise(url: str) -> str:
    """The URL stripped, with its scheme and host (the authority after any ``user@``) lowercased."""
    url = url.strip()
    colon = url.find("://")
    if colon < 1:
        return url
    end = _authority_end(url, colon + 3)
    head = url[:end]
    low = head.lower()
    if low == head:
        return url
    at = head.rfind("@")
    if at != -1:  # keep the userinfo as it is
        low = low[:colon] + head[colon : at + 1] + low[at + 1 :]
    return low + url[end:]


def _valid_labels(name: str) -> bool:
    return all(0 < len(label) < 64 and _LABEL_CHARS.issuperset(label) for label in name.split("."))


def _domain(text: str) -> str:
    """A domain line as punycode lowercase, without ``*.`` or a trailing dot; ValueError why not."""
    name = text.rstrip(".")
    name = name[2:] if name.startswith("*.") else name
    try:
        name = _ascii_host(name.lower())
    except UnicodeError:
        raise ValueError(f"not a valid internationalised domain: {text!r}") from None
    if not _valid_labels(name):
        raise ValueError(
            f"neither a domain nor a URL prefix (a prefix starts with https://): {text[:80]!r}"
        )
    if "." not in name:
        raise ValueError(f"a single label would opt out a whole top-level domain: {text!r}")
    return name


def _host_key(host: str, port: int | None) -> str:
    return host if port in _DEFAULT_PORTS else f"{host}:{port}"


def _prune(prefixes) -> list[str]:
    """Sorted, without any prefix that a shorter one already covers. Then the only prefix that
    can match a path is the greatest one not above it, which a binary search finds."""
    kept: list[str] = []
    for prefix in sorted(set(prefixes)):
        if not (kept and prefix.startswith(kept[-1])):
            kept.append(prefix)
    return kept


@dataclass
class OptOut:
    """Opted-out domains (each with all its subdomains) and URL prefixes by host.

    Prefixes treat http and https alike (an opt-out is about the work, not how it is served),
    and so ports 80 and 443 alike; any other port is part of the host. A prefix is a plain
    string prefix of the path and query: ``https://example.com/gallery`` also covers
    ``/gallery2/``, so write the trailing slash for a folder; an exact image URL also covers its
    query variants. A prefix covers its host only, not subdomains."""

    domains: set[str] = field(default_factory=set)
    prefixes: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.prefixes = {host: _prune(paths) for host, paths in self.prefixes.items()}

    @classmethod
    def from_files(cls, paths: list[str]) -> "OptOut":
        """Merge the files; a line with ``://`` is a URL prefix, else a domain (``*.`` allowed);
        a line that is neither raises :class:`ListError`."""
        domains: set[str] = set()
        prefixes: dict[str, set[str]] = {}
        for path in paths:
            for lineno, text in _lines(path):
                try:
                    if "://" not in text:
                        domains.add(_domain(text))
                        continue
                    parts = _parts(text)
                    if parts is None or parts[0] not in ("http", "https") or not parts[1]:
                        raise ValueError(f"not an http or https URL prefix: {text[:80]!r}")
                    _, host, port, rest = parts
                    try:
                        host = _ascii_host(host)
                    except UnicodeError:
                        raise ValueError(f"not a valid internationalised host: {text!r}") from None
                    if ":" not in host and not _valid_labels(host):  # IPv6 literals aside
                        raise ValueError(f"not a valid host in a URL prefix: {text[:80]!r}")
                    prefixes.setdefault(_host_key(host, port), set()).add(rest)
                except ValueError as e:
                    raise ListError(f"{path}:{lineno}: {e}") from None
        return cls(domains, prefixes)

    def opted_out(self, url: str) -> bool:
        """Whether the URL's host or any parent domain is listed, or a prefix for its host covers
        it: one set lookup per host label, then one binary search among that host's prefixes."""
        parts = _parts(url)
        if parts is None:
            return False  # the safety pre-filter drops an unparsable URL
        _, host, port, rest = parts
        try:
            host = _ascii_host(host)
        except UnicodeError:
            return False
        name = host
        while True:
            if name in self.domains:
                return True
            dot = name.find(".")
            if dot == -1:
                break
            name = name[dot + 1 :]
        listed = self.prefixes.get(_host_key(host, port))
        if not listed:
            return False
        i = bisect.bisect_right(listed, rest) - 1
        return i >= 0 and rest.startswith(listed[i])

    def __len__(self) -> int:
        return len(self.domains) + sum(len(p) for p in self.prefixes.values())

    def digest(self) -> str:
        """A short digest of the entries, the same whatever their order, duplicates or comments."""
        h = hashlib.sha256()
        for name in sorted(self.domains):
            h.update(f"d {name}\n".encode())
        for host in sorted(self.prefixes):
            for prefix in self.prefixes[host]:
                h.update(f"p {host} {prefix}\n".encode("utf-8", "surrogatepass"))
        return h.hexdigest()[:16]
