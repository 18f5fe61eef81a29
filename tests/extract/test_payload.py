import gzip
import zlib

import brotli
import pytest

from vlcurate.pipeline.extract.payload import (
    dechunk,
    decode_content,
    decode_html,
    html_verdict,
    looks_binary,
    meta_charset,
)
from vlcurate.schemas.extract import BINARY_BODY, CONTENT_ENCODING_ERROR, NOT_HTML, UNDECODABLE_TEXT

MB = 2**20


def test_dechunk_joins_chunks_and_rejects_wrong_sizes():
    assert dechunk(b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\n\r\n") == b"Wikipedia"
    assert dechunk(b"ff\r\nshort") is None  # declared size past the end
    assert dechunk(b"zz\r\nabc") is None  # not a hex size


def test_wrong_chunk_sizes_fall_back_to_raw_body():
    raw = b"<html>not chunked at all</html>"
    assert decode_content(raw, "chunked", "", MB) == (raw, None)


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "deflate", "br"])
def test_content_encodings_decode(encoding):
    html = b"<html><body>" + b"hello " * 100 + b"</body></html>"
    packed = {
        "gzip": gzip.compress,
        "x-gzip": gzip.compress,
        "deflate": zlib.compress,
        "br": brotli.compress,
    }[encoding](html)
    assert decode_content(packed, "", encoding, MB) == (html, None)


def test_raw_deflate_and_already_decoded_bodies():
    html = b"<html><body>x</body></html>"
    raw_deflate = zlib.compressobj(wbits=-15)
    packed = raw_deflate.compress(html) + raw_deflate.flush()
    assert decode_content(packed, "", "deflate", MB) == (html, None)
    assert decode_content(html, "", "gzip", MB) == (html, None)  # crawler decoded it already


def test_corrupt_or_unknown_content_encoding_is_a_reason():
    assert decode_content(b"\x1f\x8b\x08garbage", "", "gzip", MB) == (None, CONTENT_ENCODING_ERROR)
    assert decode_content(b"xx", "", "compress", MB) == (None, CONTENT_ENCODING_ERROR)


def test_decompression_stops_past_the_cap():
    bomb = gzip.compress(b"<html>" + b"\0" * (20 * MB))
    body, reason = decode_content(bomb, "", "gzip", MB)
    assert reason is None and len(body) == MB + 1  # the caller drops it as page_too_large


@pytest.mark.parametrize(
    ("content_type", "body", "verdict"),
    [
        ("text/html; charset=utf-8", b"<html><body>hi</body></html>", None),
        ("application/xhtml+xml", b"<?xml version='1.0'?><html/>", None),
        ("", b"  \n<!DOCTYPE html><html>", None),  # missing header: sniffed
        ("text/plain", b"<html><head><title>x</title>", None),  # generic header: sniffed
        ("application/octet-stream", b"<!-- c --><p>hello</p>", None),
        ("text/plain", b"just some text", NOT_HTML),
        ("application/json", b'{"html": "<html>"}', NOT_HTML),
        ("image/jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF", NOT_HTML),
        ("text/html", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", BINARY_BODY),  # the header lies
        ("text/html", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3", BINARY_BODY),
        ("text/html", b"<html>" + bytes(range(9)) * 8, BINARY_BODY),
        ("text/html", b'<html><img alt="a\x00b">', None),  # a stray NUL is not binary
    ],
)
def test_html_verdict(content_type, body, verdict):
    assert html_verdict(content_type, "", body) == verdict


def test_identified_payload_type_is_a_second_opinion():
    assert html_verdict("image/png", "text/html", b"<html><body>") is None
    assert html_verdict("image/png", "", b"<html><body>") == NOT_HTML


def test_utf16_with_bom_is_not_binary():
    assert not looks_binary("\ufeff<html>".encode("utf-16-le"))


def test_charset_from_http_header():
    text, codec, source = decode_html("<p>caf\xe9</p>".encode("cp1252"), "windows-1252")
    assert (text, codec, source) == ("<p>café</p>", "cp1252", "http_header")


def test_charset_from_meta_when_header_is_silent():
    body = '<meta charset="ISO-8859-1"><p>\xe9t\xe9</p>'.encode("latin-1")
    assert decode_html(body, None) == ('<meta charset="ISO-8859-1"><p>été</p>', "cp1252", "meta")
    http_equiv = b'<meta http-equiv="Content-Type" content="text/html; charset=shift_jis">'
    assert meta_charset(http_equiv) == "shift_jis"


def test_header_wins_over_meta():
    body = '<meta charset="utf-8"><p>\u00e9</p>'.encode("cp1252")
    assert decode_html(body, "cp1252")[2] == "http_header"


def test_lying_or_unknown_header_charset_falls_through_to_detection():
    body = "<p>Привет, мир! Это проверка кодировки страницы.</p>".encode("cp1251")
    for declared in ("utf-8", "x-no-such-charset", "'bogus'"):
        text, codec, source = decode_html(body, declared)
        assert source == "detected" and "Привет" in text, declared


def test_utf8_without_any_declaration_is_detected():
    assert decode_html("<p>naïve — ok</p>".encode(), None) == (
        "<p>naïve — ok</p>",
        "utf-8",
        "detected",
    )


def test_byte_order_mark_wins():
    body = "\ufeff<p>hé</p>".encode("utf-16-le")
    text, codec, source = decode_html(body, "iso-8859-1")
    assert source == "bom" and text.endswith("<p>hé</p>")


def test_undecodable_text_is_a_reason(monkeypatch):
    import charset_normalizer

    # Detection finds no candidate, and windows-1252's five undefined bytes are all there is.
    monkeypatch.setattr(charset_normalizer, "from_bytes", lambda b: [])
    body = bytes([0x81, 0x8D, 0x8F, 0x90, 0x9D]) * 200
    assert decode_html(body, None) == (None, UNDECODABLE_TEXT, None)


@pytest.mark.parametrize(
    ("body", "header"),
    [
        (b"<p>plain ascii</p>", None),
        ("<p>caf\u00e9 \u4e2d</p>".encode(), "utf-8"),
        ("<p>caf\u00e9</p>".encode(), None),
        ("<p>caf\u00e9</p>".encode("cp1252"), "utf-8"),  # declared UTF-8, is not: detected
        ("\ufeff<p>bom</p>".encode("utf-8"), None),
        ("<meta charset=utf-8><p>\u00e9</p>".encode("latin-1"), None),
    ],
)
def test_keep_utf8_gives_the_bytes_of_a_utf8_body_and_the_same_verdict(body, header):
    text, codec, source = decode_html(body, header)
    kept, kept_codec, kept_source = decode_html(body, header, keep_utf8=True)
    assert (kept_codec, kept_source) == (codec, source)
    assert kept == (body if codec == "utf-8" and source != "bom" else text)
