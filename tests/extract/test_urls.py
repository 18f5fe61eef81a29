import pytest

from vlcurate.pipeline.extract.urls import base_url, image_url, parse_srcset, resolve
from vlcurate.schemas.extract import IMAGE_BAD_URL, IMAGE_NO_URL, IMAGE_NON_HTTP_URL

PAGE = "https://example.com/blog/2024/post.html"


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("img/a.jpg", "https://example.com/blog/2024/img/a.jpg"),
        ("../a.jpg", "https://example.com/blog/a.jpg"),
        ("/static/a.jpg", "https://example.com/static/a.jpg"),
        ("//cdn.example.net/a.jpg", "https://cdn.example.net/a.jpg"),
        ("http://other.org/x.png?s=1#frag", "http://other.org/x.png?s=1#frag"),
        ("  a.jpg \n", "https://example.com/blog/2024/a.jpg"),
        ("?size=large", "https://example.com/blog/2024/post.html?size=large"),
    ],
)
def test_resolve_against_page(ref, expected):
    assert resolve(PAGE, ref) == (expected, None)


@pytest.mark.parametrize(
    ("ref", "reason"),
    [
        ("data:image/gif;base64,R0lGODlhAQABAAAAACw=", IMAGE_NON_HTTP_URL),
        ("javascript:void(0)", IMAGE_NON_HTTP_URL),
        ("JavaScript:alert(1)", IMAGE_NON_HTTP_URL),
        ("blob:https://example.com/1234", IMAGE_NON_HTTP_URL),
        ("ftp://example.com/a.jpg", IMAGE_NON_HTTP_URL),
        ("", IMAGE_NO_URL),
        ("   ", IMAGE_NO_URL),
        ("http://", IMAGE_BAD_URL),
        ("http://[::1", IMAGE_BAD_URL),
        ("https://example.com/" + "a" * 5000, IMAGE_BAD_URL),
    ],
)
def test_resolve_rejects_with_reason(ref, reason):
    assert resolve(PAGE, ref) == (None, reason)


def test_base_href_changes_resolution():
    base = base_url(PAGE, "https://static.example.com/assets/")
    assert resolve(base, "a.jpg") == ("https://static.example.com/assets/a.jpg", None)
    assert base_url(PAGE, "/root/") == "https://example.com/root/"
    assert base_url(PAGE, "javascript:x") == PAGE  # unusable <base> is ignored
    assert base_url(PAGE, None) == PAGE


@pytest.mark.parametrize(
    ("srcset", "largest"),
    [
        ("a.jpg 480w, b.jpg 1080w, c.jpg 800w", "b.jpg"),
        ("a.jpg 1x, b.jpg 3x, c.jpg 2x", "b.jpg"),
        ("a.jpg, b.jpg 2x", "b.jpg"),  # no descriptor means 1x
        ("a.jpg 2x, b.jpg 100w", "b.jpg"),  # widths win over densities
        (
            "https://res.example.com/w_300,c_fill/a.jpg 300w, "
            "https://res.example.com/w_900,c_fill/a.jpg 900w",
            "https://res.example.com/w_900,c_fill/a.jpg",
        ),  # commas inside URLs
        ("a.jpg", "a.jpg"),
        ("  a.jpg  ,  b.jpg   1.5x  ", "b.jpg"),
        ("a.jpg 100w, b.jpg garbage", "a.jpg"),
        ("", None),
    ],
)
def test_srcset_takes_largest_candidate(srcset, largest):
    assert parse_srcset(srcset) == largest


def test_image_url_prefers_srcset_then_lazy_then_src():
    base = "https://example.com/"
    assert image_url({"src": "s.jpg", "srcset": "x.jpg 1x, y.jpg 2x"}, base)[0] == base + "y.jpg"
    lazy = {"src": "data:image/gif;base64,AAAA", "data-src": "real.jpg"}
    assert image_url(lazy, base) == (base + "real.jpg", None)
    assert image_url({"src": "blank.gif", "data-original": "o.jpg"}, base)[0] == base + "o.jpg"
    assert image_url({"data-srcset": "l.jpg 10w, xl.jpg 20w"}, base)[0] == base + "xl.jpg"
    assert image_url({"src": "s.jpg"}, base) == (base + "s.jpg", None)


def test_image_url_falls_back_to_picture_sources_and_reports_first_reason():
    base = "https://example.com/"
    assert image_url({}, base, ["p.webp 1x, p2.webp 2x"]) == (base + "p2.webp", None)
    assert image_url({}, base) == (None, IMAGE_NO_URL)
    assert image_url({"src": "data:image/png;base64,AA"}, base) == (None, IMAGE_NON_HTTP_URL)


def test_srcset_scan_equals_the_html_candidate_pattern():
    """The per-candidate scan against the one-regex form it replaced (which backtracked along
    every URL), on random strings of the characters that matter."""
    import random
    import re

    from vlcurate.pipeline.extract.urls import _srcset_candidates

    pattern = re.compile(r"[\s,]*(?:(\S*?),+(?=\s|$)|(\S+)([^,]*))")

    def by_pattern(srcset):
        for m in pattern.finditer(srcset):
            if m.group(1):
                yield m.group(1), ""
            elif m.group(2):
                yield m.group(2), m.group(3).strip().lower()

    pieces = [
        "a",
        "b.jpg",
        ",",
        ",",
        " ",
        "\t",
        "\n",
        "\u00a0",
        "\u3000",
        "2x",
        "300w",
        "X",
        "?q=1,2",
    ]
    rng = random.Random(19)
    for _ in range(50_000):
        srcset = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        assert list(_srcset_candidates(srcset)) == list(by_pattern(srcset)), repr(srcset)
