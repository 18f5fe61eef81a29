import hashlib

from vlcurate.pipeline.extract.page import BOILERPLATE_TAGS, clean_text, extract_page, pair_uid
from vlcurate.schemas.extract import IMAGE_BAD_URL, IMAGE_NO_ALT, IMAGE_NO_URL, IMAGE_NON_HTTP_URL

URL = "https://example.com/articles/cats.html"


def texts(page):
    return [text for kind, text, _, _ in page.nodes if kind == "text"]


def test_pairs_cover_src_srcset_lazy_and_picture():
    html = """<html lang="en-GB"><head><title>Cats</title></head><body>
      <img src="a.jpg" alt="A cat" width="640" height="480px">
      <img srcset="s.jpg 320w, l.jpg 1280w" src="s.jpg" alt="Srcset cat">
      <img src="data:image/gif;base64,R0lGOD" data-src="/lazy/cat.jpg" alt="Lazy cat">
      <picture><source srcset="p.avif 1x, p@2x.avif 2x" type="image/avif">
        <img alt="Picture cat"></picture>
      <img src="no-alt.jpg">
    </body></html>"""
    page = extract_page(html, URL)
    assert page.title == "Cats" and page.lang == "en-gb"
    assert [(p["url"], p["caption"], p["position"]) for p in page.pairs] == [
        ("https://example.com/articles/a.jpg", "A cat", 0),
        ("https://example.com/articles/l.jpg", "Srcset cat", 1),
        ("https://example.com/lazy/cat.jpg", "Lazy cat", 2),
        ("https://example.com/articles/p@2x.avif", "Picture cat", 3),
    ]
    assert (page.pairs[0]["width"], page.pairs[0]["height"]) == (640, 480)
    assert page.pairs[0]["uid"] == pair_uid("A cat", "https://example.com/articles/a.jpg")
    assert page.images_seen == 5 and page.image_drops == {IMAGE_NO_ALT: 1}


def test_uid_is_md5_of_alt_plus_url_as_cc2dataset():
    assert pair_uid("a", "http://x/") == hashlib.md5(b"ahttp://x/").hexdigest()


def test_base_href_is_used():
    page = extract_page(
        '<head><base href="https://cdn.example.org/img/"></head><img src="x.png" alt="X">', URL
    )
    assert page.pairs[0]["url"] == "https://cdn.example.org/img/x.png"


def test_bad_urls_are_dropped_with_reasons():
    html = """<img src="javascript:alert(1)" alt="js"><img alt="nothing">
      <img src="data:image/png;base64,AAAA" alt="inline"><img src="http://[bad" alt="bad">
      <img src="https://example.com/%s" alt="long">""" % ("x" * 3000)
    page = extract_page(html, URL)
    assert page.pairs == []
    assert page.image_drops == {IMAGE_NON_HTTP_URL: 2, IMAGE_NO_URL: 1, IMAGE_BAD_URL: 2}


def test_control_characters_and_nul_are_removed_from_alt_text():
    html = '<img src="a.jpg" alt="A\x00 cat\x07 on\t\n a   mat\x1b \x7f">'
    assert extract_page(html, URL).pairs[0]["caption"] == "A cat on a mat"
    assert clean_text("  a\u0000b\r\n c ") == "ab c"


def test_alt_text_is_capped_and_dimensions_validated():
    html = '<img src="a.jpg" alt="%s" width="50%%" height="99999999999">' % ("word " * 1000)
    pair = extract_page(html, URL, max_alt_chars=100).pairs[0]
    assert len(pair["caption"]) == 100 and pair["width"] is None and pair["height"] is None


def test_document_drops_boilerplate_and_keeps_order():
    html = """<html><head><style>p{}</style></head><body>
      <header><img src="logo.png" alt="Logo"> Site name</header>
      <nav><a href="/">Home</a> <a href="/about">About</a></nav>
      <article><h1>All about <em>cats</em></h1>
        <p>Cats are <b>small</b>, <a href="/x">furry</a> animals.<br>They purr.</p>
        <figure><img src="cat.jpg" alt="A cat"><figcaption>A cat sleeping.</figcaption></figure>
        <p>More text<img src="inline.jpg"> after an inline image.</p>
        <script>document.write("not text")</script>
        <form><input value="search"><button>Go</button></form>
      </article>
      <aside>Related links</aside><footer>Copyright 2024</footer>
    </body></html>"""
    page = extract_page(html, URL)
    assert [(kind, text or url) for kind, text, url, _ in page.nodes] == [
        ("text", "All about cats"),
        ("text", "Cats are small, furry animals."),
        ("text", "They purr."),
        ("image", "https://example.com/articles/cat.jpg"),
        ("text", "A cat sleeping."),
        ("text", "More text"),
        ("image", "https://example.com/articles/inline.jpg"),
        ("text", "after an inline image."),
    ]
    assert page.nodes[3] == ("image", None, "https://example.com/articles/cat.jpg", "A cat")
    assert page.nodes[6][3] == ""  # an image without alt text is still a document node
    # the pairs still see the header logo: LAION keeps every <img> with alt text
    assert [p["caption"] for p in page.pairs] == ["Logo", "A cat"]
    assert {"script", "nav", "header", "footer", "form", "style", "aside"} <= set(BOILERPLATE_TAGS)


def test_page_without_body_text_or_title():
    page = extract_page("", URL)
    assert page.nodes == [] and page.pairs == [] and page.title is None and page.lang is None


def test_private_use_characters_in_text_survive():
    """Icon fonts put glyphs in the private-use area, where the image markers also live."""
    page = extract_page("<p>icon \ue000 font \ue001 glyphs \ue0007\ue001</p><img src=a.jpg>", URL)
    assert texts(page) == ["icon \ue000 font \ue001 glyphs \ue0007\ue001"]
    assert [n[0] for n in page.nodes] == ["text", "image"]
