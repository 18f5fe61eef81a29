"""One test per kind of bad input: each is dropped with a reason and counted, the rest of the
file is still read where the format allows, and nothing raises."""

import gzip

import pytest

from tests.warcs import http_response, page, warc_record, write_warc
from vlcurate.jobs import extract as extract_job
from vlcurate.pipeline.extract.stage import ExtractConfig, extract_file_to
from vlcurate.pipeline.storage import InputError, expand_inputs
from vlcurate.schemas.extract import (
    BAD_PAGE_URL,
    BINARY_BODY,
    FILE_EMPTY,
    FILE_NOT_WARC,
    HTTP_NOT_200,
    IMAGE_BAD_URL,
    NOT_HTML,
    PAGE_TOO_LARGE,
    TRUNCATED_RECORD,
)


def good(i: int) -> bytes:
    return page(
        f"<html><body><p>Page {i}</p><img src='a{i}.jpg' alt='image {i}'></body></html>",
        url=f"http://example.com/{i}",
    )


def run(tmp_path, name: str, data: bytes | list[bytes], gzip_members=True, **config):
    path = tmp_path / name
    if isinstance(data, list):
        write_warc(path, data, gzip_members)
    else:
        path.write_bytes(data)
    stats = extract_file_to(str(path), str(tmp_path / "out"), ExtractConfig(**config))
    assert stats["in"] == stats["kept"] + sum(stats["dropped"].values())
    assert stats["files"]["in"] == stats["files"]["kept"] + sum(stats["files"]["dropped"].values())
    return stats


def test_truncated_gzip_member_at_the_end(tmp_path):
    whole = b"".join(gzip.compress(good(i)) for i in range(3))
    stats = run(tmp_path, "t.warc.gz", whole[: len(whole) - 40])
    assert (stats["kept"], stats["dropped"]) == (2, {TRUNCATED_RECORD: 1})
    assert stats["files_damaged"] == 1


def test_corrupt_gzip_member_in_the_middle_costs_one_record(tmp_path):
    members = [gzip.compress(good(i)) for i in range(4)]
    broken = bytearray(members[1])
    broken[20:40] = b"\xff" * 20
    stats = run(tmp_path, "c.warc.gz", members[0] + bytes(broken) + members[2] + members[3])
    assert stats["kept"] == 3 and stats["files_damaged"] == 1 and stats["resyncs"] >= 1


@pytest.mark.parametrize("gzip_members", [True, False])
def test_garbage_between_records(tmp_path, gzip_members):
    records = [good(i) for i in range(3)]
    junk = b"\x00\x01GARBAGE\r\nnot a record\r\n\r\n"
    name = "g.warc.gz" if gzip_members else "g.warc"
    if gzip_members:
        data = (
            gzip.compress(records[0]) + junk + gzip.compress(records[1]) + gzip.compress(records[2])
        )
    else:
        data = records[0] + junk + records[1] + records[2]
    assert run(tmp_path, name, data)["kept"] == 3


@pytest.mark.parametrize("gzip_members", [True, False])
def test_content_length_past_the_next_records(tmp_path, gzip_members):
    liar = warc_record(
        http_response(b"<html>short</html>"), "http://example.com/liar", content_length=10_000
    )
    stats = run(tmp_path, "cl.warc", [good(0), liar, good(1), good(2)], gzip_members)
    assert (stats["in"], stats["kept"], stats["dropped"]) == (4, 3, {TRUNCATED_RECORD: 1})


def test_wrong_chunk_sizes_fall_back_to_the_raw_body(tmp_path, warcs):
    stats = extract_file_to(str(warcs / "warcio-example-wrong-chunks.warc.gz"), str(tmp_path))
    assert (stats["in"], stats["kept"]) == (1, 1)
    body = b"<html><body><p>chunk sizes are wrong</p></body></html>"
    chunked = b"ff\r\n" + body + b"\r\n0\r\n\r\n"
    record = page(chunked, headers={"Transfer-Encoding": "chunked"})
    assert run(tmp_path, "wc.warc", [record])["kept"] == 1


def test_file_that_is_not_a_warc(tmp_path):
    stats = run(tmp_path, "x.warc.gz", b"<html>this is a web page, not a WARC file</html>\n" * 50)
    assert stats["files"] == {"in": 1, "kept": 0, "dropped": {FILE_NOT_WARC: 1}}
    assert stats["in"] == 0


def test_empty_file(tmp_path):
    stats = run(tmp_path, "e.warc.gz", b"")
    assert stats["files"]["dropped"] == {FILE_EMPTY: 1}


def test_huge_page_is_capped_and_the_next_record_is_read(tmp_path):
    huge = page(b"<html><body>" + b"<p>spam</p>" * (50 * 2**20 // 11) + b"</body></html>")
    stats = run(tmp_path, "h.warc.gz", [good(0), huge, good(1)])
    assert (stats["kept"], stats["dropped"]) == (2, {PAGE_TOO_LARGE: 1})
    stats = run(tmp_path, "h2.warc.gz", [good(0), good(1)], max_page_bytes=50)
    assert stats["dropped"] == {PAGE_TOO_LARGE: 2}


def test_binary_body_labelled_as_html(tmp_path):
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    stats = run(tmp_path, "b.warc.gz", [page(png), good(1), page(b"\x00" * 100 + b"<html>")])
    assert (stats["kept"], stats["dropped"]) == (1, {BINARY_BODY: 2})


def test_not_html_and_not_200(tmp_path):
    records = [
        page(b'{"a": 1}', content_type="application/json"),
        page(b"<html>moved</html>", status="301 Moved Permanently"),
        page(b"<html>gone</html>", status="404 Not Found"),
        good(1),
    ]
    stats = run(tmp_path, "n.warc.gz", records)
    assert stats["dropped"] == {NOT_HTML: 1, HTTP_NOT_200: 2} and stats["kept"] == 1


def test_broken_charset_is_decoded_by_detection(tmp_path):
    text = "<html><body><p>Ceci est une page en français, avec des accents: é, è, à, ç.</p>"
    body = (text + "<img src='x.jpg' alt='Café crème à emporter'></body></html>").encode("cp1252")
    stats = run(
        tmp_path, "cs.warc.gz", [page(body, content_type="text/html; charset=no-such-charset")]
    )
    assert stats["kept"] == 1 and stats["charset_source"] == {"detected": 1}
    import pyarrow.parquet as pq

    (pair,) = pq.read_table(next((tmp_path / "out" / "pairs").glob("*.parquet"))).to_pylist()
    assert pair["caption"] == "Café crème à emporter"


def test_nul_and_control_characters_in_alt_text(tmp_path):
    body = b"<html><body><img src='a.jpg' alt='A\x00 red\x01\x02 bus\x1b\x7f'></body></html>"
    run(tmp_path, "nul.warc.gz", [page(body)])
    import pyarrow.parquet as pq

    (pair,) = pq.read_table(next((tmp_path / "out" / "pairs").glob("*.parquet"))).to_pylist()
    assert pair["caption"] == "A red bus"


def test_absurd_urls(tmp_path):
    body = (
        "<html><body>"
        f"<img src='https://example.com/{'x' * 10_000}.jpg' alt='too long'>"
        "<img src='http://[::1' alt='broken ipv6'>"
        "<img src='https://ok.example.com/fine.jpg' alt='fine'>"
        "</body></html>"
    ).encode()
    records = [
        page(body),
        page(b"<html></html>", url="not a url at all"),
        page(b"<html></html>", url="mailto:someone@example.com"),
    ]
    stats = run(tmp_path, "u.warc.gz", records)
    assert stats["dropped"] == {BAD_PAGE_URL: 2}
    assert stats["images"]["dropped"] == {IMAGE_BAD_URL: 2} and stats["pairs"] == 1


def test_missing_input_fails_before_the_job_starts(tmp_path, capsys):
    with pytest.raises(InputError, match="input not found: .*nope.warc.gz"):
        expand_inputs([str(tmp_path / "nope.warc.gz")])
    listing = tmp_path / "warc.paths"
    listing.write_text("a.warc.gz\n")
    with pytest.raises(InputError, match="a.warc.gz"):
        expand_inputs([str(listing)])
    with pytest.raises(InputError, match="matched no file"):
        expand_inputs([str(tmp_path / "*.warc.gz")])
    assert (
        extract_job.main(
            ["--input", str(tmp_path / "nope.warc.gz"), "--output", str(tmp_path / "o")]
        )
        == 2
    )
    assert "input not found" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
