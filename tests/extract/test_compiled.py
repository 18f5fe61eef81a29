"""The compiled document pass (``_dom.pyx``) against the Python path, page for page: the real
WARC pages, hostile markup, and a few thousand generated pages."""

import functools
import random
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from fastwarc.warc import ArchiveIterator, WarcRecordType

from vlcurate.pipeline.extract import page as page_module
from vlcurate.pipeline.extract import records
from vlcurate.pipeline.extract.page import clean_text, extract_page, extract_page_compiled
from vlcurate.pipeline.extract.payload import decode_html
from vlcurate.pipeline.extract.stage import ExtractConfig, extract_file_to
from vlcurate.schemas.extract import PAIR_SCHEMA

_dom = pytest.importorskip("vlcurate.pipeline.extract._dom", reason="make venv builds it")
_urls = pytest.importorskip("vlcurate.pipeline.extract._urls", reason="make venv builds it")

WARCS = Path(__file__).parents[1] / "data" / "warc"
URL = "https://example.com/a/page.html"


def assert_same(html: bytes, url: str = URL) -> None:
    python, compiled = extract_page(html, url), extract_page_compiled(html, url)
    assert compiled == python, html[:300]


def test_tag_lists_are_the_python_paths():
    assert _dom.BOILERPLATE == page_module.BOILERPLATE_TAGS
    assert _dom.INLINE == page_module.INLINE_TAGS


def test_clean_matches_clean_text_for_every_character_up_to_u3100():
    """Whitespace as ``str.split`` has it, control characters and U+FFFD dropped."""
    for start in range(0, 0x3100, 64):
        chars = [chr(c) for c in range(start, start + 64) if not 0xD800 <= c < 0xE000]
        text = "".join(f" x{c}y{c}{c} " for c in chars) + "".join(chars)
        assert _dom.clean(text) == clean_text(text), hex(start)
    for text in ("\ufffd", " a\ufffdb ", "\u3000a\u3000", "a\x1cb", "\x00\x01", "  "):
        assert _dom.clean(text) == clean_text(text)


def _warc_pages():
    for path in sorted(WARCS.glob("*.warc*")):
        with open(path, "rb") as stream:
            try:
                for record in ArchiveIterator(
                    stream, record_types=WarcRecordType.response, parse_http=True
                ):
                    http = record.http_headers
                    if http is None or http.status_code != 200:
                        continue
                    text, codec, source = decode_html(record.reader.read(), record.http_charset)
                    if text is not None:
                        url = record.headers.get("WARC-Target-URI").strip("<>")
                        yield text.encode("utf-8", "ignore"), url
            except Exception:  # the damaged files end early
                continue


def test_every_page_of_the_test_warcs():
    pages = list(_warc_pages())
    assert len(pages) > 40
    for html, url in pages:
        assert_same(html, url)


HOSTILE = [
    b"",
    b"\x00\x00<p>nul\x00s</p>",
    b"<p>" + b"<div>" * 20000 + b"deep" + b"</div>" * 20000,
    b"<b>" * 5000 + b"unclosed inline <img src=x.jpg alt=deep>",
    b"<html lang=' EN-us\x01 '><title> t\x0bi\ttle </title><p>a\xc2\xa0b\xe3\x80\x80c</p>",
    b"<frameset><frame src=a></frameset><img src=f.jpg alt=frames>",
    b"<template><img src=t.jpg alt=template><p>t</p></template><p>after</p>",
    b"<svg><title>svg title</title><image href=s.png /></svg><title>real</title><p>x</p>",
    b"<PICTURE><SOURCE SRCSET='u.webp 2x'><IMG ALT='upper case'></PICTURE>",
    b"<img src=a.jpg src=b.jpg alt=one alt=two width=10px height='50%'>",
    b"<p>icon \xee\x80\x80 font \xee\x80\x82 &#xe001; &#57346; glyph</p><img src=i.jpg alt=i>",
    b"<base href='https://cdn.example.org/x/'><base href='/ignored/'><img src=r.jpg alt=b>",
    b"<base><base href=''><img src=//h.example/p.jpg alt=proto-relative>",
    b"<p>a<!-- c -->b<?pi x?>c</p><p>d<script>s</script>e<style>f</style>g</p>",
    b"<p>x<img alt=nourl>y<img src='data:image/png;base64,AA' alt=data>z</p>",
    b"<p>x<img src=u.jpg>y<img src=v.jpg alt=' alt\x00 '>z</p>",
    b"<table><tr><td>1<td>2<img src=t.jpg alt=cell></table><noscript><img src=n.jpg alt=ns>",
    b"<body><p>one</p></body><p>after body</p><img src=late.jpg alt=late></html><p>tail",
    b"<head><img src=head.jpg alt=in-head></head><body>x",
    b"\xef\xbf\xbd\xef\xbf\xbd<p>\xef\xbf\xbd</p>",
    b"<math><mi>x</mi><img src=m.jpg alt=math></math><select><option>o</select>q",
    "<img src=s.jpg alt=sup width=\u00b2 height=\u0663\u0660\u0660>".encode(),
]


def test_a_width_that_is_a_digit_but_not_a_number_is_no_size_and_keeps_the_page():
    """``"²".isdigit()`` is true and ``int("²")`` raises: that once dropped the whole page."""
    (pair,) = extract_page(HOSTILE[-1], "http://example.org/").pairs
    assert (pair["width"], pair["height"]) == (None, 300)


@pytest.mark.parametrize("html", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_markup(html):
    assert_same(html)


# --- generated pages ----------------------------------------------------------------------

TAGS = [
    *page_module.BOILERPLATE_TAGS[:12],
    *page_module.INLINE_TAGS,
    *"p div li ul table td tr h1 h2 pre blockquote br hr section article main figure".split(),
    *"figcaption title base source picture custom-tag x:y".split(),
]
TEXTS = [
    "word",
    " spaced  out ",
    "\n\t",
    "\xa0",
    "\u2003em",
    "\x01ctl",
    "\ue000pua\ue002",
    "&amp;",
    "&#0;",
    "&#xe001;",
    "caf\xe9",
    "\U0001f600",
    "\r\n",
    "",
]
SRCS = ["a.jpg", "/b.png", "//c.example/d.gif", "https://e.example/f.jpg", "data:x", "", " g.jpg"]


def _attrs(rng: random.Random) -> str:
    out = []
    for name in ("src", "alt", "srcset", "data-src", "width", "height", "class", "href", "lang"):
        if rng.random() < 0.3:
            value = rng.choice(SRCS + TEXTS + ["480w", "10", "12px", "a.jpg 1x, b.jpg 2x"])
            out.append(f"{name}='{value}'" if rng.random() < 0.9 else name)
    return " ".join(out)


def generated_page(rng: random.Random, size: int = 60) -> bytes:
    parts = ["<!doctype html>"] if rng.random() < 0.5 else []
    open_tags = []
    for _ in range(size):
        roll = rng.random()
        if roll < 0.3:
            tag = rng.choice(TAGS)
            parts.append(f"<{tag.upper() if rng.random() < 0.1 else tag} {_attrs(rng)}>")
            open_tags.append(tag)
        elif roll < 0.45 and open_tags:
            parts.append(f"</{open_tags.pop()}>")
        elif roll < 0.65:
            parts.append(f"<img {_attrs(rng)}>")
        elif roll < 0.7:
            parts.append(f"<!-- {rng.choice(TEXTS)} -->")
        else:
            parts.append(rng.choice(TEXTS))
    return "".join(parts).encode("utf-8", "surrogatepass")


def test_generated_pages():
    rng = random.Random(19)
    for _ in range(3000):
        assert_same(generated_page(rng))


# --- the stage: both paths write the same files ---------------------------------------------


def _outputs(folder: Path):
    return [
        pq.read_table(folder / kind).sort_by("warc_offset").to_pylist()
        for kind in ("pairs", "docs")
    ]


def test_stage_outputs_and_stats_are_the_same_on_both_paths(tmp_path):
    for warc in sorted(WARCS.glob("*.warc*")):
        compiled = extract_file_to(str(warc), str(tmp_path / "c"))
        python = extract_file_to(str(warc), str(tmp_path / "p"), ExtractConfig(compiled=False))
        passes = compiled.pop("compiled_pass", None)
        assert compiled == python, warc.name
        if passes:  # every parsed page went through the compiled pass
            assert passes["in"] == passes["kept"] == compiled["kept"], warc.name
    assert _outputs(tmp_path / "c") == _outputs(tmp_path / "p")


def test_a_declined_page_takes_the_python_path_and_is_counted(tmp_path, monkeypatch):
    def decline(*args):
        raise _dom.Refused("parse_failed")

    monkeypatch.setattr(records, "extract_page_compiled", decline)
    warc = str(WARCS / "dolma-sample-0000.warc.gz")
    stats = extract_file_to(warc, str(tmp_path / "declined"))
    assert stats["compiled_pass"]["kept"] == 0
    assert stats["compiled_pass"]["dropped"] == {"parse_failed": stats["kept"]}
    monkeypatch.undo()
    assert _outputs(tmp_path / "declined") == _outputs_of(warc, tmp_path / "normal")


def _outputs_of(warc: str, folder: Path):
    extract_file_to(warc, str(folder))
    return _outputs(folder)


def test_recursion_limit_is_not_involved():
    """The walks are loops: a page nested deeper than Python's recursion limit is fine."""
    depth = sys.getrecursionlimit() * 3
    html = b"<div>" * depth + b"<img src=a.jpg alt=deep>text" + b"</div>" * depth
    page = extract_page_compiled(html, URL)
    assert [n[0] for n in page.nodes] == ["image", "text"] and page.pairs


# --- URLs ---------------------------------------------------------------------------------


def _first_rule(ref: str, max_length: int) -> bool:
    """Whether urls.resolve returns ``ref`` unchanged by its first (absolute URL) rule."""
    from vlcurate.pipeline.extract import urls

    stripped = ref.strip()
    if stripped != ref or not ref[:11].lower().startswith(("http://", "https://")):
        return False
    host = ref.split("/", 3)[2].split("?", 1)[0].split("#", 1)[0]
    return (
        not urls._needs_join(ref)
        and urls._HOST.fullmatch(host) is not None
        and len(ref) <= max_length
    )


def _random_strings(pieces, count, longest, prefixes=(), prefixed=0.0):
    rng = random.Random(19)
    for _ in range(count):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, longest)))
        yield rng.choice(prefixes) + text if rng.random() < prefixed else text


def _by_python(module, function, value):
    """``function(value)`` with ``module``'s C helpers switched off."""
    saved, module._urls = module._urls, None
    try:
        return function(value)
    finally:
        module._urls = saved


def test_plain_url_is_the_first_rule_of_resolve_for_ascii_urls():
    pieces = [
        "http://", "https://", "HTTP://", "hTtPs://", "http:/", "a", "Z", "9", ".", "..", "/",
        "/", "?", "#", ":", ":80", ":123456", "[", "]", "::1", "f", "G", "%", "_", "-", "~",
        " ", "\t", "\\", "\x7f", "\x00", "\u00e9", "\u00a0", "@", "=", ",", "'", "x" * 30,
    ]  # fmt: skip
    lengths = [2048, 10, 20, 30]
    refs = _random_strings(pieces, 100_000, 8, ("http://", "https://"), 0.5)
    for i, ref in enumerate(refs):
        max_length = lengths[i % 4]
        compiled = _urls.plain_url(ref, max_length)
        assert compiled in (None, ref)
        python = _first_rule(ref, max_length)
        assert compiled is None if not python else (compiled == ref or not ref.isascii()), ref


def test_srcset_best_is_parse_srcset_where_it_answers():
    from vlcurate.pipeline.extract import urls

    pieces = [
        "a", "b.jpg", ",", ",", " ", "\t", "\x0b", "\x1c", "\n", "\u00a0", "1", "0", ".", "w",
        "W", "x", "X", "h", "300w", "2x", "1.5x", ".5x", "5.x", "1e3w", "-2w", "nan", "?q=1,2",
    ]  # fmt: skip
    answered = 0
    for srcset in _random_strings(pieces, 50_000, 14):
        best = _urls.srcset_best(srcset)
        if best is not False:
            answered += 1
            assert best == _by_python(urls, urls.parse_srcset, srcset), repr(srcset)
    assert answered > 20_000
    wordpress = "https://e.org/a-300x200.jpg 300w, https://e.org/a-1024x683.jpg 1024w, /a.jpg 768w"
    assert _urls.srcset_best(wordpress) == "https://e.org/a-1024x683.jpg"


def test_page_url_by_c_equals_urlsplit():
    pieces = [
        "http://", "https://", "HTTP://", "<", ">", " ", "a", "Z", "9", ".", "/", "?", "#", ":",
        ":80", "[", "]", "::1", "1.2.3.4", "@", "%", "_", "-", "\\", "\t", "\u00e9", "=", "x" * 10,
    ]  # fmt: skip
    prefixes = ("http://", "https://", "<http://")
    for target in _random_strings(pieces, 50_000, 8, prefixes, 0.6):
        expected = _by_python(records, records._page_url, target)
        assert records._page_url(target) == expected, repr(target)


_JOIN_PIECES = [
    "//", "/", "/", "a", "Z", "9", ".", "..", "./", "../", "?", "#", ":", "?q=1", "#f", "h.com",
    "[::1]", ":8080", "%20", "_", "-", "~", " ", "\t", "\\", "\x7f", "\u00e9", "@", "=", "x" * 20,
    "http:", "data:", "https://",
]  # fmt: skip
_BASES = [
    "https://example.com/a/page.html", "https://example.com", "http://e.org:8080/x/y/",
    "https://example.com?q=1", "https://example.com/p#a/b", "https://example.com/d/p?x=/y",
    "https://example.com/x/../y/p", "https://example.com/./p", "http://[::1]/a", "https://\u00e9.fr/a/b",
    "http://example.com/a b/c", "no-scheme/path",
]  # fmt: skip


def test_join_simple_is_resolve_where_it_answers():
    from vlcurate.pipeline.extract import urls

    answered = 0
    for i, ref in enumerate(_random_strings(_JOIN_PIECES, 60_000, 6)):
        base, max_length = _BASES[i % len(_BASES)], (2048, 40)[i % 2]
        compiled = _urls.join_simple(base, ref, max_length)
        if compiled is not None:
            answered += 1
            resolve = functools.partial(urls.resolve, base, max_length=max_length)
            assert (compiled, None) == _by_python(urls, resolve, ref), (base, ref)
    assert answered > 3_000


def test_join_simple_agrees_with_urljoin_but_keeps_empty_segments():
    """Where ``_join_simple`` answers, urljoin gives the same URL, except that urljoin also
    merges the empty path segments of ``a//b`` and drops an empty query or fragment (``p?``,
    ``p#``); RFC 3986 keeps both, and so do browsers."""
    from urllib.parse import urljoin

    from vlcurate.pipeline.extract.urls import _join_simple

    pieces = [p for p in _JOIN_PIECES if p.isascii() and p.strip() == p and p != "\\"]
    for i, ref in enumerate(_random_strings(pieces, 30_000, 6)):
        base = _BASES[i % 10]
        joined = _join_simple(base, ref) if ref else None
        empty_part = ref.endswith(("?", "#")) or "?#" in ref
        if joined is not None and "//" not in ref.lstrip("/") and not empty_part:
            assert joined == urljoin(base, ref), (base, ref)


def test_the_base_query_and_dot_segments_do_not_leak_into_relative_urls():
    from vlcurate.pipeline.extract.urls import resolve

    assert resolve("https://example.com?page=2", "i.png") == ("https://example.com/i.png", None)
    assert resolve("https://example.com#top", "/i.png") == ("https://example.com/i.png", None)
    assert resolve("https://e.com/x/../y/p", "i.png") == ("https://e.com/y/i.png", None)
    assert resolve("https://e.com/a/", "/.?v=2") == ("https://e.com/?v=2", None)  # "." then "?"


def test_dimension_by_c_is_python_where_it_answers():
    pieces = ["1", "0", "9", "px", "PX", "pX", " ", "\t", "\x1c", "\x0b", "%", ".", "-", "+",
              "\u00b2", "\u0661", "\u00a0", "e", "x"]  # fmt: skip
    for value in _random_strings(pieces, 50_000, 6):
        found = _dom.dimension(value)
        if found is not False:
            assert found == page_module._dimension(value), repr(value)
    assert _dom.dimension("1234567890") is None and _dom.dimension(" 300 Px ") == 300


def test_image_pairs_is_page_pairs_on_random_images():
    rng = random.Random(20)
    names = ["src", "srcset", "alt", "width", "height", "data-src", "data-srcset", "data-lazy"]
    values = [
        "https://cdn.example.com/i.jpg", "/i.png", "i.png", "//cdn.e.org/x.webp", "data:x",
        "a.jpg 300w, b.jpg 900w", "a.jpg 2x, b.jpg", "c.jpg 1.5x%2C d.jpg", "", " ",
        "Alt  text\n here", "\u00e9t\u00e9 \u00a0 caption", "x" * 40, "300", "50%", "\u00b2", None,
    ]  # fmt: skip
    for _ in range(3_000):
        attrs = {n: rng.choice(values) for n in rng.sample(names, rng.randint(0, 5))}
        extra = rng.choice([None, [], ["p.jpg 800w", ""], [""]])
        images = [(attrs, extra)] * rng.randint(1, 3)
        for base in ("https://example.com/a/page.html", "https://example.com?q=1"):
            expected = page_module._pairs(images, base, 12, 60)
            assert _dom.image_pairs(images, base, 12, 60, page_module._dimension) == expected


def test_image_pairs_with_a_row_gives_whole_pair_rows():
    """With ``row``, the compiled pass builds each pair as the whole PAIR_SCHEMA row that the
    Python path gets by ``dict.update``: the same dicts, uid included (non-ASCII, surrogates)."""
    images = [
        ({"src": "a.jpg", "alt": "caf\u00e9  au lait", "width": "30"}, None),
        ({"src": "b.jpg", "alt": "plain", "height": "2px", "data-src": "c.jpg"}, None),
        ({"srcset": "d.jpg 2x", "alt": "\u4e2d\u6587"}, ["e.jpg 800w"]),
        ({"src": "f\ud800.jpg", "alt": "lone surrogate in the URL"}, None),
        ({"src": "g.jpg", "alt": ""}, None),
    ]
    base = "https://example.com/p/"
    row = ("https://example.com/p/", "en", "warc", "x.warc.gz", "<urn:uuid:1>", 7)
    fields = ("page_url", "page_lang", "source", "warc_path", "warc_record_id", "warc_offset")
    expected, drops, resolved = page_module._pairs(images, base, 1000, 2048)
    for pair in expected:
        pair.update(zip(fields, row, strict=True))
    pairs, drops_c, resolved_c = _dom.image_pairs(
        images, base, 1000, 2048, page_module._dimension, row
    )
    assert (pairs, drops_c, resolved_c) == (expected, drops, resolved)
    assert [p["uid"] for p in pairs] == [
        page_module.pair_uid(p["caption"], p["url"]) for p in pairs
    ]
    assert {frozenset(p) for p in pairs} == {frozenset(PAIR_SCHEMA.names)}


def test_document_nodes_are_not_tracked_by_the_cyclic_collector():
    import gc

    page = extract_page_compiled(b"<body><p>a <img src=x.jpg alt=b> c</p><p>d</p>", URL)
    assert [n[0] for n in page.nodes] == ["text", "image", "text", "text"]
    assert not any(gc.is_tracked(node) for node in page.nodes)
