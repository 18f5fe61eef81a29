"""WAT files (WARC files of JSON metadata records) -> pair rows, every record accounted for."""

import gzip
import json
import uuid

import pytest

from tests.warcs import warc_record, write_warc
from vlcurate.pipeline.extract.config import ExtractConfig
from vlcurate.pipeline.extract.page import pair_uid
from vlcurate.pipeline.extract.wat import extract_wat, is_wat
from vlcurate.pipeline.stats import StageStats
from vlcurate.schemas.extract import (
    BAD_JSON,
    BAD_PAGE_URL,
    FILE_EMPTY,
    FILE_NOT_WARC,
    FILE_UNREADABLE,
    HTTP_NOT_200,
    IMAGE_NO_ALT,
    IMAGE_NO_URL,
    IMAGE_NON_HTTP_URL,
    NOT_HTML,
    PAIR_SCHEMA,
    TRUNCATED_RECORD,
)

ROW_KEYS = set(PAIR_SCHEMA.names)


def envelope(
    url,
    links=(),
    status="200",
    content_type="text/html; charset=utf-8",
    base=None,
    kind="response",
    record_id=None,
    html=True,
):
    """The JSON body of one WAT metadata record, shaped as Common Crawl writes it."""
    head = {"Title": "A page", "Metas": [{"name": "viewport", "content": "width=device-width"}]}
    if base is not None:
        head["Base"] = base
    http = {"Response-Message": {"Status": status} if status else {}, "Headers": {}}
    if content_type is not None:
        http["Headers"]["Content-Type"] = content_type
    if html:
        http["HTML-Metadata"] = {"Head": head, "Links": list(links)}
    warc = {"WARC-Type": kind, "WARC-Target-URI": url, "WARC-Record-ID": record_id or rid()}
    return {
        "Container": {"Filename": "x.warc.gz", "Offset": "0"},
        "Envelope": {
            "Format": "WARC",
            "WARC-Header-Metadata": warc,
            "Payload-Metadata": {"HTTP-Response-Metadata": http},
        },
    }


def rid() -> str:
    return f"<urn:uuid:{uuid.uuid4()}>"


def meta(body: dict | bytes, url: str = "http://example.com/") -> bytes:
    block = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "WARC-Refers-To": rid()}
    return warc_record(block, url, record_type="metadata", headers=headers)


def warcinfo() -> bytes:
    block = b"software: test\r\nformat: WARC File Format 1.0\r\n"
    return warc_record(block, "", "warcinfo", headers={"Content-Type": "application/warc-fields"})


def img(url, alt=None):
    link = {"path": "IMG@/src", "url": url}
    if alt is not None:
        link["alt"] = alt
    return link


def run(path, **config):
    stats = StageStats("extract")
    pages = list(extract_wat(str(path), ExtractConfig(**config), stats))
    stats.check()  # in == kept + dropped, for records, files and images
    for tally in (stats.main, *stats.tallies.values()):
        assert tally.seen == tally.kept + sum(tally.dropped.values())
    return pages, stats


PAGE = "http://example.com/dir/page.html"
LINKS = [
    img("http://cdn.example.org/a.jpg", "  A \n dog\x00 "),
    {"path": "A@/href", "url": "http://example.com/other", "text": "a link"},
    img("img/b.png", "b picture"),
    img("/c.gif", "c picture"),
    img("data:image/png;base64,AAAA", "inline"),
    img("d.jpg", ""),
    img("e.jpg"),
    img("", "no url"),
    {"path": "LINK@/href", "url": "style.css", "rel": "stylesheet"},
]


def test_response_pairs_and_provenance(tmp_path):
    response_id = rid()
    records = [
        warcinfo(),
        meta(envelope(PAGE, kind="request"), PAGE),
        meta(envelope(PAGE, LINKS, record_id=response_id), PAGE),
        meta(envelope(PAGE, kind="metadata"), PAGE),
        meta(
            envelope(
                "http://b.example.net/x/y", [img("d.jpg", "dee")], base="http://s.example.net/base/"
            )
        ),
    ]
    path = write_warc(tmp_path / "t.warc.wat.gz", records)
    offsets = [0]
    for record in records[:-1]:
        offsets.append(offsets[-1] + len(gzip.compress(record)))
    pages, stats = run(path)
    assert len(pages) == 2 and stats.main.kept == 2 and not stats.main.dropped
    assert stats.extra["other_records"] == 3  # warcinfo, request and metadata metadata
    first, second = pages
    assert [(r["url"], r["caption"], r["position"]) for r in first] == [
        ("http://cdn.example.org/a.jpg", "A dog", 0),
        ("http://example.com/dir/img/b.png", "b picture", 1),
        ("http://example.com/c.gif", "c picture", 2),
    ]
    for row in first:
        assert set(row) == ROW_KEYS and row["source"] == "wat"
        assert row["uid"] == pair_uid(row["caption"], row["url"])
        assert (row["page_url"], row["warc_path"], row["warc_record_id"]) == (
            PAGE,
            path,
            response_id,
        )
        assert row["warc_offset"] == offsets[2]
        assert row["width"] is row["height"] is row["page_lang"] is None
    assert [(r["url"], r["position"], r["warc_offset"]) for r in second] == [
        ("http://s.example.net/base/d.jpg", 0, offsets[4])
    ]
    images = stats.tally("images")
    assert (images.seen, images.kept) == (8, 4)
    assert images.dropped == {IMAGE_NON_HTTP_URL: 1, IMAGE_NO_ALT: 2, IMAGE_NO_URL: 1}
    assert stats.tally("files").kept == 1 and stats.extra["files_damaged"] == 0


def test_drop_reasons(tmp_path):
    misshapen = envelope(PAGE, [img("a.jpg", "a"), 3])
    records = [
        meta(envelope(PAGE, [img("a.jpg", "a")], status="404")),
        meta(envelope(PAGE, [img("a.jpg", "a")], status=None)),
        meta(envelope(PAGE, content_type="application/pdf")),
        meta(envelope(PAGE, content_type="text/plain", html=False)),
        meta(envelope("ftp://example.com/f", [img("a.jpg", "a")]), "ftp://example.com/f"),
        meta(b"{not json"),
        meta(b'{"Container": {}}'),
        meta(b"\xff\xfe\x00garbage"),
        meta(misshapen),  # a link that is not an object
        meta(envelope(PAGE, content_type=None, links=[img("a.jpg", "kept")])),  # sniffed by WAT
        meta(envelope(PAGE)),  # no images: still a kept page
    ]
    pages, stats = run(write_warc(tmp_path / "d.wat.gz", records))
    assert stats.main.dropped == {
        HTTP_NOT_200: 2,
        NOT_HTML: 2,
        BAD_PAGE_URL: 1,
        BAD_JSON: 4,
    }
    assert [[r["caption"] for r in p] for p in pages] == [["kept"], []]
    assert stats.tally("images").seen == 1  # images of dropped pages are not counted


def test_uncompressed_and_truncated(tmp_path):
    records = [warcinfo(), meta(envelope(PAGE, [img("a.jpg", "a")])), meta(envelope(PAGE, LINKS))]
    pages, stats = run(write_warc(tmp_path / "u.wat", records, gzip_members=False))
    assert [len(p) for p in pages] == [1, 3]
    whole = b"".join(gzip.compress(r) for r in records)
    cut = tmp_path / "cut.wat.gz"
    cut.write_bytes(whole[: len(whole) - 40])
    pages, stats = run(cut)
    assert len(pages) == 1 and stats.main.dropped == {TRUNCATED_RECORD: 1}
    assert stats.extra["files_damaged"] == 1


def test_bad_files(tmp_path):
    empty = tmp_path / "e.wat.gz"
    empty.write_bytes(b"")
    garbage = tmp_path / "g.wat.gz"
    garbage.write_bytes(b"this is not a warc file at all\n" * 10)
    for path, reason in [
        (empty, FILE_EMPTY),
        (garbage, FILE_NOT_WARC),
        (tmp_path / "missing.wat.gz", FILE_UNREADABLE),
    ]:
        pages, stats = run(path)
        assert pages == [] and stats.main.seen == 0
        assert stats.tally("files").dropped == {reason: 1}
        assert stats.tally("images").seen == 0


@pytest.mark.parametrize(
    "name, expected",
    [
        ("s3://cc/CC-MAIN-x.warc.wat.gz", True),
        ("a.wat.gz", True),
        ("a.WAT", True),
        ("a.warc.gz", False),
        ("a.wet.gz", False),
        ("a.wat.gz.tmp", False),
    ],
)
def test_is_wat(name, expected):
    assert is_wat(name) is expected
