"""From a raw HTTP payload to HTML text: transfer/content decoding, HTML sniffing, charsets."""

import codecs
import re
import zlib

from vlcurate.schemas.extract import BINARY_BODY, CONTENT_ENCODING_ERROR, NOT_HTML, UNDECODABLE_TEXT

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "application/vnd.wap.xhtml+xml"})
# Content types that say nothing about the body, so the body is sniffed instead.
GENERIC_TYPES = frozenset(
    {
        "",
        "text/plain",
        "application/octet-stream",
        "binary/octet-stream",
        "application/unknown",
        "unknown/unknown",
        "application/x-unknown-content-type",
        "*/*",
    }
)

# Leading bytes of common binary formats (images, archives, documents, media, executables).
_MAGIC = tuple(
    bytes.fromhex(h)
    for h in (
        "89504e47 ffd8ff 47494638 25504446 504b0304 1f8b 424d 52494646 00000100 494433 4f676753"
        " 664c6143 7f454c46 774f4646 774f4632 28b52ffd 377abcaf 52617221 d0cf11e0 4d5a 49492a00"
        " 4d4d002a"
    ).split()
)  # PNG JPEG GIF PDF ZIP gzip BMP RIFF ICO MP3 Ogg FLAC ELF WOFF WOFF2 zstd 7z RAR OLE MZ TIFF
# WHATWG MIME sniffing: an HTML document starts (after whitespace) with one of these tags.
_HTML_START = re.compile(
    rb"\s*(?:<!doctype\s+html|<html|<head|<body|<script|<iframe|<h1|<div|<font|<table|<a[\s>]"
    rb"|<style|<title|<b[\s>]|<br|<p[\s>]|<!--|<meta|<link)",
    re.IGNORECASE,
)
_CONTROL_BYTES = bytes(sorted(set(range(32)) - {9, 10, 12, 13, 27}))
_META_CHARSET = re.compile(
    rb"""<meta[^>]{0,512}?charset\s*=\s*["']?\s*([a-zA-Z0-9_:.\-]{1,40})""", re.I
)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# The labels that the HTML standard maps to windows-1252.
_WINDOWS_1252 = frozenset({"latin-1", "iso8859-1", "ascii", "cp1252"})


def dechunk(body: bytes) -> bytes | None:
    """Undo HTTP chunked transfer encoding; ``None`` when the chunk sizes do not add up."""
    out, pos, n = [], 0, len(body)
    while pos < n:
        eol = body.find(b"\r\n", pos, pos + 64)
        if eol < 0:
            return None
        try:
            size = int(body[pos:eol].split(b";", 1)[0], 16)
        except ValueError:
            return None
        if size == 0:
            return b"".join(out)
        start = eol + 2
        if start + size > n:
            return None
        out.append(body[start : start + size])
        pos = start + size + 2
    return b"".join(out)  # a missing last chunk: keep what arrived


def decode_content(body: bytes, transfer_encoding: str, content_encoding: str, max_bytes: int):
    """Apply the HTTP transfer and content encodings. Returns ``(body, None)`` or
    ``(None, reason)``. Wrong chunk sizes fall back to the raw body, as warcio does.
    Decompression stops after ``max_bytes + 1`` bytes, so a compression bomb costs nothing."""
    if "chunked" in transfer_encoding.lower():
        body = dechunk(body) or body
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity", "none", "utf-8", "utf8"):
        return body, None
    if body[:2] != b"\x1f\x8b" and encoding in ("gzip", "x-gzip") and _HTML_START.match(body[:256]):
        return body, None  # already decoded by the crawler, header left as it was
    try:
        if encoding in ("gzip", "x-gzip"):
            return zlib.decompressobj(47).decompress(body, max_bytes + 1), None  # gzip or zlib
        if encoding == "deflate":
            try:
                return zlib.decompressobj().decompress(body, max_bytes + 1), None
            except zlib.error:  # raw deflate, as some servers send
                return zlib.decompressobj(-15).decompress(body, max_bytes + 1), None
        if encoding == "br":
            import brotli

            out = brotli.Decompressor().process(body, output_buffer_limit=max_bytes + 1)
            return out, None
    except Exception:  # zlib.error, brotli.error: a corrupt or truncated stream
        return None, CONTENT_ENCODING_ERROR
    return None, CONTENT_ENCODING_ERROR  # compress, zstd, or an unknown token


def looks_binary(head: bytes) -> bool:
    """True for bodies that are certainly not markup: a known binary signature, or NUL and
    other control bytes where text would have none. UTF-16 text with a BOM is not binary."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    if head.startswith(_MAGIC) or head[4:8] == b"ftyp":
        return True
    sample = head[:1024]
    # A stray NUL happens in real HTML; binary data has many (WHATWG's "binary data bytes").
    return len(sample) > 0 and len(sample.translate(None, _CONTROL_BYTES)) < 0.95 * len(sample)


def looks_html(head: bytes) -> bool:
    head = head[:1024].lstrip(b"\xef\xbb\xbf")
    return bool(_HTML_START.match(head)) or b"<html" in head.lower()


def html_verdict(content_type: str, identified_type: str, body: bytes) -> str | None:
    """``None`` if the body is HTML, else the drop reason.

    The HTTP Content-Type decides, unless it is missing or generic (then the body is sniffed)
    or the body is binary whatever the header says. Common Crawl's
    ``WARC-Identified-Payload-Type`` (detected by the crawler from the body) is a second
    opinion: when it says HTML, a body that looks like HTML is accepted.
    """
    mime = content_type.split(";", 1)[0].strip().lower()
    head = body[:1024]
    if looks_binary(head):
        return BINARY_BODY if mime in HTML_TYPES else NOT_HTML
    if mime in HTML_TYPES:
        return None
    identified = identified_type.split(";", 1)[0].strip().lower()
    if (mime in GENERIC_TYPES or identified in HTML_TYPES) and looks_html(head):
        return None
    return NOT_HTML


def _codec(label: str | None) -> str | None:
    """Python codec for a charset label, with the HTML standard's windows-1252 mapping."""
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip().strip("\"'")).name
    except (LookupError, ValueError):
        return None
    return "cp1252" if name in _WINDOWS_1252 else name


def meta_charset(head: bytes) -> str | None:
    """The charset declared by ``<meta charset>`` or ``<meta http-equiv>`` in the first 4 KB."""
    m = _META_CHARSET.search(head[:4096])
    return m.group(1).decode("ascii") if m else None


def _decoded(body: bytes, codec: str, keep_utf8: bool) -> str | bytes:
    if keep_utf8 and codec == "utf-8":
        if not body.isascii():
            body.decode("utf-8")  # raises UnicodeDecodeError where it is not UTF-8
        return body
    return body.decode(codec)


def decode_html(
    body: bytes, header_charset: str | None, max_replacement: float = 0.05, keep_utf8=False
):
    """Decode an HTML body. Returns ``(text, codec, source)`` or ``(None, reason, None)``.

    With ``keep_utf8``, a body found to be UTF-8 (without a byte-order mark) comes back as its
    own bytes, checked but not decoded (an ASCII body is not even read twice): lexbor parses
    UTF-8 bytes as they are, so the extract stage never needs that ``str``.

    Order: a byte-order mark, the HTTP header's charset, ``<meta charset>``, then detection
    (UTF-8 first, which is cheap and nearly never wrong when it succeeds, then
    charset-normalizer). A declared charset that is unknown or fails to decode strictly is
    skipped, not trusted. Detection that leaves more than ``max_replacement`` of the text as
    U+FFFD is undecodable.
    """
    for bom, codec in _BOMS:
        if body.startswith(bom):
            text = body.decode(codec, errors="replace").removeprefix("\ufeff")
            return text, codec, "bom"
    for source, label in (("http_header", header_charset), ("meta", None)):
        if source == "meta":
            label = meta_charset(body)
        codec = _codec(label)
        if codec:
            try:
                return _decoded(body, codec, keep_utf8), codec, source
            except (UnicodeDecodeError, LookupError):
                pass
    try:
        return _decoded(body, "utf-8", keep_utf8), "utf-8", "detected"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = list(from_bytes(body[:65536]))
    codec = _codec(matches[0].encoding) if matches else None
    # Single-byte Latin codecs often tie; prefer windows-1252, the web's commonest legacy
    # charset and the HTML standard's default, when it is about as clean as the winner.
    if any(m.encoding == "cp1252" and m.chaos <= matches[0].chaos + 0.05 for m in matches):
        codec = "cp1252"
    text = body.decode(codec or "cp1252", errors="replace")
    if text.count("\ufffd") > max_replacement * max(len(text), 1):
        return None, UNDECODABLE_TEXT, None
    return text, codec or "cp1252", "detected"
