"""Block lists and opt-out lists: parsing (each digest kind, comments, bad lines named FILE:LINE),
URL and content matches, domain and prefix matching, IDN, merged files, and the settings digest.

Measured on the shared 2-core dev machine (Python 3.11, timeit; noisy, not asserted):
- ``Blocklist.url_blocked``: ~1.8 us per URL with one kind listed, ~2.8 us with all three;
  ~5 us when the URL's scheme or host has capitals (its normalised form is hashed too).
  ``content_blocked`` on a 50 kB image: ~70 us with MD5 only, ~130 us with all three kinds.
- ``OptOut.opted_out`` with 1M domains and 100k prefixes: ~2-5 us per URL (the host read the
  way ``urlsplit`` reads it, one set lookup per label, one binary search among the host's
  prefixes); ``urlsplit`` alone with ``.hostname`` and ``.port`` costs ~7 us.
- Memory (tracemalloc): 1M SHA-256 digests as bytes in a set ~= 99 MB (65 B objects plus the
  set's table); as hex ``str`` they would take ~147 MB.
"""

import gzip
import hashlib
import re
from urllib.parse import urlsplit

import pytest

from vlcurate.pipeline.download.lists import (
    BLOCKLISTED,
    OPTED_OUT,
    Blocklist,
    ListError,
    OptOut,
)
from vlcurate.pipeline.storage import InputError

URL = "https://images.example.com/cats/1.jpg"
IMAGE = b"\xff\xd8\xff\xe0 not really a jpeg, but bytes all the same"


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def hexes(data: bytes) -> dict[str, str]:
    return {kind: hashlib.new(kind, data).hexdigest() for kind in ("md5", "sha1", "sha256")}


def test_reason_codes():
    assert (BLOCKLISTED, OPTED_OUT) == ("blocklisted", "opted_out")


@pytest.mark.parametrize("kind", ["md5", "sha1", "sha256"])
def test_each_digest_kind_matches_urls_and_bytes(tmp_path, kind):
    url_line, image_line = hexes(URL.encode())[kind], hexes(IMAGE)[kind]
    blocklist = Blocklist.from_files([write(tmp_path, "b.txt", f"{url_line}\n{image_line}\n")])
    assert len(blocklist) == 2 and len(getattr(blocklist, kind)) == 2
    assert blocklist.url_blocked(URL) and blocklist.content_blocked(IMAGE)
    # a file does not say which a line is: a URL digest is also checked against bytes
    assert blocklist.content_blocked(URL.encode())
    assert not blocklist.url_blocked(URL.replace("1.jpg", "2.jpg"))
    assert not blocklist.content_blocked(IMAGE + b"\0")


def test_mixed_file_with_comments_case_bom_and_gzip(tmp_path):
    lines = [
        "# hashes from a child-safety organisation",
        "",
        hexes(b"a")["md5"].upper(),
        f"   {hexes(b'b')['sha1']}   # inline comment",
        hexes(b"c")["sha256"],
        hexes(b"c")["sha256"],  # a duplicate
    ]
    plain = tmp_path / "mixed.txt"
    plain.write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode())
    packed = tmp_path / "mixed.txt.gz"
    packed.write_bytes(gzip.compress("\n".join(lines).encode()))
    for path in (str(plain), f"file://{packed}"):
        blocklist = Blocklist.from_files([path])
        assert (len(blocklist.md5), len(blocklist.sha1), len(blocklist.sha256)) == (1, 1, 1)
        assert all(blocklist.content_blocked(data) for data in (b"a", b"b", b"c"))
        assert isinstance(next(iter(blocklist.md5)), bytes)  # raw digests, not hex text


@pytest.mark.parametrize(
    "bad",
    [
        "d41d8cd98f00b204e9800998ecf8427",  # 31 digits
        "d41d8cd98f00b204e9800998ecf8427ez",  # 32, not hex
        "d41d8cd98f00b204 e9800998ecf8427e",  # an inner space
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "d41d8cd98f00b204e9800998ecf8427e  image.jpg",  # md5sum's output is not a list
        "https://example.com/a.jpg",
    ],
)
def test_a_bad_line_is_named_by_file_and_line(tmp_path, bad):
    path = write(tmp_path, "bad.txt", f"# header\n{hexes(b'x')['md5']}\n\n{bad}\n")
    with pytest.raises(ListError, match=f"^{re.escape(path)}:4: not a hex") as caught:
        Blocklist.from_files([path])
    assert isinstance(caught.value, InputError)


def test_unreadable_lists_are_list_errors(tmp_path):
    with pytest.raises(ListError, match="not found"):
        Blocklist.from_files([str(tmp_path / "missing.txt")])
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"example.com\ncaf\xe9.fr\n")
    with pytest.raises(ListError, match=f"^{re.escape(str(path))}:2: not UTF-8"):
        OptOut.from_files([str(path)])


def test_url_match_as_given_and_normalised(tmp_path):
    odd = "HTTP://Shop.Example.com/Cats/1.JPG"  # listed exactly as someone spelled it
    path = write(
        tmp_path, "b.txt", f"{hexes(URL.encode())['md5']}\n{hexes(odd.encode())['sha1']}\n"
    )
    blocklist = Blocklist.from_files([path])
    assert blocklist.url_blocked(URL)
    assert blocklist.url_blocked("  HTTPS://Images.EXAMPLE.com/cats/1.jpg\n")
    assert not blocklist.url_blocked(URL.replace("cats", "Cats"))  # the path is case-sensitive
    assert not blocklist.url_blocked(URL + "?x=1")
    assert blocklist.url_blocked(odd)  # as given
    assert not blocklist.url_blocked(odd.lower())  # its normalised form is not what was listed
    user = "https://Me@images.example.com/cats/1.jpg"  # userinfo is kept as it is
    blocklist = Blocklist.from_files([write(tmp_path, "u.txt", hexes(user.encode())["md5"])])
    assert blocklist.url_blocked("HTTPS://Me@IMAGES.example.com/cats/1.jpg")
    assert not blocklist.url_blocked("https://me@images.example.com/cats/1.jpg")


def test_a_digest_that_matches_nothing(tmp_path):
    blocklist = Blocklist.from_files([write(tmp_path, "b.txt", hexes(b"other")["sha256"])])
    assert not blocklist.url_blocked(URL) and not blocklist.content_blocked(IMAGE)
    empty = Blocklist.from_files([write(tmp_path, "e.txt", "# nothing yet\n")])
    assert len(empty) == 0 and not empty.url_blocked(URL) and not empty.content_blocked(IMAGE)


def test_only_the_listed_kinds_are_computed(tmp_path, monkeypatch):
    blocklist = Blocklist.from_files([write(tmp_path, "b.txt", hexes(IMAGE)["md5"])])
    calls = []
    real = hashlib.sha256
    monkeypatch.setattr(hashlib, "sha256", lambda *a: calls.append(a) or real(*a))
    monkeypatch.setattr(hashlib, "sha1", lambda *a: calls.append(a) or real(*a))
    assert blocklist.content_blocked(IMAGE) and not blocklist.url_blocked(URL)
    assert calls == []


def test_repeatable_files_are_merged(tmp_path):
    one = write(tmp_path, "one.txt", hexes(b"a")["md5"] + "\n" + hexes(b"b")["sha256"])
    two = write(tmp_path, "two.txt", hexes(b"b")["sha256"] + "\n" + hexes(b"c")["sha1"])
    blocklist = Blocklist.from_files([one, two])
    assert len(blocklist) == 3 and all(blocklist.content_blocked(d) for d in (b"a", b"b", b"c"))
    opt = OptOut.from_files(
        [write(tmp_path, "o1.txt", "a.com\n"), write(tmp_path, "o2.txt", "b.org\na.com\n")]
    )
    assert len(opt) == 2 and opt.opted_out("http://a.com/") and opt.opted_out("http://b.org/")


def test_blocklist_digest_follows_contents_not_order_case_or_comments(tmp_path):
    a, b, c = hexes(b"a")["md5"], hexes(b"b")["sha1"], hexes(b"c")["sha256"]
    first = Blocklist.from_files([write(tmp_path, "1.txt", f"{a}\n{b}\n")]).digest()
    same = Blocklist.from_files(
        [write(tmp_path, "2.txt", f"# reordered\n\n{b.upper()}\n"), write(tmp_path, "3.txt", a)]
    ).digest()
    more = Blocklist.from_files([write(tmp_path, "4.txt", f"{a}\n{b}\n{c}\n")]).digest()
    fewer = Blocklist.from_files([write(tmp_path, "5.txt", a)]).digest()
    assert first == same and len({first, more, fewer, Blocklist().digest()}) == 4


@pytest.fixture
def opt_out(tmp_path) -> OptOut:
    return OptOut.from_files(
        [
            write(
                tmp_path,
                "spawning.txt",
                "# domains\nexample.com\n*.Artist.NET.\nbücher.de\n"
                "# prefixes\nhttps://photos.example.org/gallery/\nhttp://x.example.org/a\n"
                "https://x.example.org/a/b/c\nhttps://x.example.org/b/cd\n"
                "https://ports.example.org:8443/p/\nhttps://whole.example.org\n"
                "https://straße.example/kunst/\n",
            )
        ]
    )


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://example.com/a.jpg", True),
        ("http://EXAMPLE.COM./a.jpg", True),
        ("https://cdn.images.example.com:8080/a.jpg", True),  # a subdomain, any port
        ("https://notexample.com/a.jpg", False),  # a look-alike
        ("https://example.com.evil.net/a.jpg", False),
        ("https://example.co/a.jpg", False),
        ("https://evil.net/?u=https://example.com/a.jpg", False),
        ("https://example.com@evil.net/a.jpg", False),  # the host is evil.net
        ("https://evil.net@example.com/a.jpg", True),
        ("https://artist.net/", True),  # *.artist.net is artist.net and its subdomains
        ("https://www.artist.net/", True),
        ("https://smartist.net/", False),
    ],
)
def test_domains_match_themselves_and_subdomains_only(opt_out, url, expected):
    assert opt_out.opted_out(url) is expected


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://photos.example.org/gallery/1.jpg", True),
        ("http://photos.example.org/gallery/1.jpg", True),  # http and https alike
        ("https://PHOTOS.example.org:443/gallery/sub/2.jpg?w=1", True),
        ("https://photos.example.org/gallery", False),  # the folder's prefix has its slash
        ("https://photos.example.org/Gallery/1.jpg", False),  # paths are case-sensitive
        ("https://photos.example.org/other/1.jpg", False),
        ("https://cdn.photos.example.org/gallery/1.jpg", False),  # a prefix is for its host
        ("https://x.example.org/a", True),
        ("https://x.example.org/ab.jpg", True),  # a string prefix, not a folder
        ("https://x.example.org/b/cd/e.jpg", True),
        ("https://x.example.org/b/c.jpg", False),
        ("https://x.example.org/", False),
        ("https://ports.example.org:8443/p/1.jpg", True),
        ("https://ports.example.org/p/1.jpg", False),  # another port is another site
        ("https://whole.example.org", True),
        ("https://whole.example.org?x=1", True),
        ("https://sub.whole.example.org/", False),
        ("ftp://photos.example.org/gallery/1.jpg", True),  # the scheme is safety's to judge
        ("not a url", False),
    ],
)
def test_prefixes(opt_out, url, expected):
    assert opt_out.opted_out(url) is expected


def test_prefixes_covered_by_shorter_ones_are_pruned(opt_out):
    assert opt_out.prefixes["x.example.org"] == ["/a", "/b/cd"]
    assert len(opt_out) == 3 + 6  # domains, prefixes after pruning


def test_idn_domains_are_punycode(opt_out):
    assert "xn--bcher-kva.de" in opt_out.domains
    assert opt_out.opted_out("http://xn--bcher-kva.de/x.jpg")
    assert opt_out.opted_out("http://BÜCHER.de/x.jpg")
    assert opt_out.opted_out("http://shop.bücher.de/x.jpg")
    assert not opt_out.opted_out("http://bucher.de/x.jpg")
    assert opt_out.opted_out("https://strasse.example/kunst/1.jpg")  # IDNA 2003: ß is ss
    assert opt_out.opted_out("https://STRASSE.example/kunst/1.jpg")


@pytest.mark.parametrize(
    "bad, why",
    [
        ("example.com/gallery/", "neither a domain nor a URL prefix"),
        ("not a domain", "neither"),
        ("com", "single label"),
        ("a..b.com", "neither"),
        (("x" * 64) + ".com", "neither"),
        ("ftp://example.com/pub/", "not an http or https URL prefix"),
        ("https:///no-host", "not an http or https URL prefix"),
        ("https://example.com:99999/", "not an http or https URL prefix"),
        ("https://exa mple.com/pics/", "not a valid host"),
    ],
)
def test_a_line_that_is_neither_is_named(tmp_path, bad, why):
    path = write(tmp_path, "o.txt", f"example.com\n{bad}\n")
    with pytest.raises(ListError, match=f"^{re.escape(path)}:2: .*{why}"):
        OptOut.from_files([path])


def test_the_host_is_read_as_urlsplit_reads_it(tmp_path):
    """The host matched is the one the fetcher connects to, for URLs built to confuse."""
    opt = OptOut.from_files([write(tmp_path, "o.txt", "example.com\n")])
    tricky = [
        "https://example.com\\@evil.net/",
        "https://evil.net\\@example.com/",
        "https://evil.net#@example.com/",
        "https://evil.net?@example.com/",
        "https://a@b@example.com/",
        "https://ex\tample.com/",
        "  https://example.com/  ",
        "https://[::1]/example.com",
        "https://user:pass@EXAMPLE.com:443/",
        "https:example.com/",
    ]
    for url in tricky:
        host = (urlsplit(url.strip()).hostname or "").rstrip(".")
        expected = host == "example.com" or host.endswith(".example.com")
        assert opt.opted_out(url) is expected, url


def test_opt_out_digest_follows_contents_not_order_or_comments(tmp_path):
    def digest(text):
        return OptOut.from_files([write(tmp_path, "d.txt", text)]).digest()

    base = digest("a.com\nhttps://b.org/x/\n")
    assert base == digest("# reordered\nhttp://B.org/x/\n*.A.com\n\na.com\n")
    assert base != digest("a.com\nhttps://b.org/y/\n")
    assert base != digest("a.com\n")
    assert base != OptOut().digest()
