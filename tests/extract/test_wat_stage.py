"""WAT files through the extract stage: pairs only, empty docs, stats.json, listings, resume,
and WARC and WAT inputs mixed in one job (in this process and on Spark)."""

import gzip
import json
import random
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.extract.test_wat import LINKS, PAGE, envelope, img, meta, warcinfo
from tests.warcs import write_warc
from vlcurate.jobs import extract as extract_job
from vlcurate.pipeline.extract import wat
from vlcurate.pipeline.extract.config import ExtractConfig
from vlcurate.pipeline.extract.page import _pairs
from vlcurate.pipeline.extract.stage import ExtractStage, sample_text, shard_name, summary_text
from vlcurate.pipeline.stage import run_stage
from vlcurate.pipeline.storage import expand_inputs
from vlcurate.schemas.extract import BAD_JSON, DOC_SCHEMA, HTTP_NOT_200, PAIR_SCHEMA, SOURCES
from vlcurate.schemas.spark import to_spark

REAL_WAT = Path(__file__).parent.parent / "data" / "wat" / "whirlwind.warc.wat.gz"


def small_wat(path: Path) -> str:
    """Two kept pages (4 pairs), one 404, one bad body, and the request/warcinfo records."""
    records = [
        warcinfo(),
        meta(envelope(PAGE, kind="request")),
        meta(envelope(PAGE, LINKS)),
        meta(envelope("http://b.example.net/x/y", [img("d.jpg", "dee")], base="/base/")),
        meta(envelope(PAGE, [img("a.jpg", "a")], status="404")),
        meta(b"{not json"),
    ]
    return write_warc(path, records)


def run(inputs, out: Path) -> dict:
    return run_stage(ExtractStage([str(p) for p in inputs], str(out), ExtractConfig()))


def read(out: Path, kind: str, path) -> list[dict]:
    return pq.read_table(out / kind / f"{shard_name(str(path))}.parquet").to_pylist()


def check_identity(stats: dict) -> None:
    for tally in (stats, stats["files"], stats["images"]):
        assert tally["in"] == tally["kept"] + sum(tally["dropped"].values())


def test_a_wat_file_gives_pairs_and_an_empty_docs_file(tmp_path):
    source = small_wat(tmp_path / "CC-MAIN-x-00000.warc.wat.gz")
    out = tmp_path / "out"
    stats = run([source], out)
    assert stats == json.loads((out / "stats.json").read_text())
    check_identity(stats)
    assert (stats["in"], stats["kept"], stats["dropped"]) == (4, 2, {HTTP_NOT_200: 1, BAD_JSON: 1})
    assert (stats["pairs"], stats["docs"], stats["other_records"]) == (4, 0, 2)
    assert stats["wat_files"] == 1 and "no documents" in stats["wat_note"]
    assert stats["schema_version"] == "extract/2"
    pairs = read(out, "pairs", source)
    assert [(r["url"], r["source"]) for r in pairs] == [
        ("http://cdn.example.org/a.jpg", "wat"),
        ("http://example.com/dir/img/b.png", "wat"),
        ("http://example.com/c.gif", "wat"),
        ("http://b.example.net/base/d.jpg", "wat"),  # <base> resolved against the page
    ]
    assert all(r["page_lang"] is r["width"] is r["height"] is None for r in pairs)
    name = shard_name(source)
    assert pq.read_schema(out / "pairs" / f"{name}.parquet").equals(PAIR_SCHEMA)
    assert pq.read_schema(out / "docs" / f"{name}.parquet").equals(DOC_SCHEMA)
    assert pq.read_metadata(out / "docs" / f"{name}.parquet").num_rows == 0
    text = summary_text(stats, str(out))
    assert "(0 documents) (1 WAT files: pairs only, no documents)" in text
    assert "bad_json" in text
    assert "sample pairs (4 in" in sample_text(out)  # no document to show: no failure either


def test_rerun_resumes(tmp_path):
    source = small_wat(tmp_path / "a.wat.gz")
    first = run([source], tmp_path / "out")
    again = run([source], tmp_path / "out")
    assert again["units_resumed"] == 1
    for key in ("in", "kept", "dropped", "pairs", "docs", "wat_files"):
        assert again[key] == first[key], key


def test_mixed_warc_and_wat_inputs(tmp_path, warcs):
    warc = warcs / "whirlwind.warc.gz"
    source = small_wat(tmp_path / "w.warc.wat.gz")
    out = tmp_path / "out"
    stats = run([warc, source, REAL_WAT], out)
    check_identity(stats)
    assert (stats["inputs"], stats["wat_files"], stats["files"]["kept"]) == (3, 2, 3)
    assert (stats["in"], stats["kept"], stats["docs"], stats["pairs"]) == (1 + 4, 1 + 2, 1, 7 + 4)
    assert {r["source"] for r in read(out, "pairs", warc)} == {"warc"}
    assert {r["source"] for r in read(out, "pairs", source)} == {"wat"}
    assert len(read(out, "docs", warc)) == 1 and read(out, "docs", source) == []
    table = pq.read_table(out / "pairs")
    assert set(table.column("source").to_pylist()) == set(SOURCES)


def test_the_real_common_crawl_wat_has_no_response(tmp_path):
    """Its records are a warcinfo and the metadata of a request: nothing to keep or drop."""
    stats = run([REAL_WAT], tmp_path / "out")
    assert (stats["in"], stats["other_records"], stats["files"]["kept"]) == (0, 2, 1)
    assert stats["files_damaged"] == 0


def test_wat_listing_with_prefix(tmp_path):
    sources = [small_wat(tmp_path / f"CC-MAIN-{i}.warc.wat.gz") for i in range(2)]
    listing = tmp_path / "lists" / "wat.paths.gz"
    listing.parent.mkdir()
    with gzip.open(listing, "wt") as f:
        f.write("CC-MAIN-0.warc.wat.gz\n# comment\n\nCC-MAIN-1.warc.wat.gz\n")
    assert expand_inputs([str(listing)], prefix=str(tmp_path)) == sorted(sources)
    stats = run(expand_inputs([str(listing)], prefix=str(tmp_path)), tmp_path / "out")
    assert (stats["wat_files"], stats["kept"], stats["pairs"]) == (2, 4, 8)


def test_shard_names_keep_wat_apart_from_warc():
    warc, wat_name = "s3://cc/seg/X-00000.warc.gz", "s3://cc/seg/X-00000.warc.wat.gz"
    assert shard_name(warc).startswith("X-00000-")
    assert shard_name(wat_name).startswith("X-00000.wat-")
    assert shard_name("a.wat.gz").startswith("a.wat-") and shard_name("a.WAT").startswith("a.wat-")


def test_help_mentions_wat():
    help_text = extract_job.build_parser().format_help()
    assert "WAT" in help_text and "wat.paths.gz" in help_text


def reference(links, base, config, provenance):
    """The links through ``page._pairs``, as attribute dicts: what the WAT loop must equal."""
    images = [
        ({"src": wat._text(link.get("url")), "alt": wat._text(link.get("alt"))}, None)
        for link in links
        if link.get("path") == wat._IMG
    ]
    pairs, drops, _ = _pairs(images, base, config.max_alt_chars, config.max_url_length)
    return [{**p, **provenance} for p in pairs], drops, len(images)


@pytest.mark.parametrize("seed", range(3))
def test_the_wat_link_loop_equals_the_page_path(seed):
    pieces = ["a.jpg", "/b/c.png", "//cdn.x.org/d", "http://h.example/e", " ", "", "?q", "#f",
              "../up.jpg", "./here.gif", "data:x", "javascript:y", "HTTPS://H/I", "http://[::1]/z",
              "\x00", "\\", "é", "%20", ":", "x" * 30]  # fmt: skip
    rng = random.Random(seed)
    config = ExtractConfig(max_alt_chars=12, max_url_length=40)
    for _ in range(300):
        links = []
        for _ in range(rng.randint(0, 8)):
            link = {"path": rng.choice(["IMG@/src", "IMG@/src", "A@/href", "LINK@/href"])}
            if rng.random() < 0.9:
                url = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 3)))
                link["url"] = url if rng.random() < 0.95 else 7
            if rng.random() < 0.8:
                link["alt"] = rng.choice(["", " ", "a dog", "x\x00 y\n z", "long " * 5, None])
            links.append(link)
        provenance = {"source": "wat", "width": None, "height": None}  # as _response gives it
        for base in ("http://example.com/d/p.html", "https://h.example"):
            fast = wat._link_pairs(links, base, config, provenance)
            assert fast == reference(links, base, config, provenance)


@pytest.mark.spark
def test_mixed_inputs_on_spark(spark, warcs, tmp_path):
    warc = warcs / "whirlwind.warc.gz"
    source = small_wat(tmp_path / "w.warc.wat.gz")
    out = tmp_path / "out"
    stats = extract_job.run([str(warc), source], str(out), ExtractConfig(), progress=False)
    check_identity(stats)
    assert (stats["wat_files"], stats["docs"], stats["pairs"]) == (1, 1, 11)
    pairs = spark.read.schema(to_spark(PAIR_SCHEMA)).parquet(str(out / "pairs"))
    counts = {row["source"]: row["count"] for row in pairs.groupBy("source").count().collect()}
    assert counts == {"warc": 7, "wat": 4}
    docs = spark.read.schema(to_spark(DOC_SCHEMA)).parquet(str(out / "docs"))
    assert docs.count() == 1
