"""The Spark extract job in local mode, on the shared session: outputs, accounting, resume."""

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from vlcurate.jobs import extract as extract_job
from vlcurate.pipeline.extract.stage import ExtractConfig, extract_file_to, shard_name
from vlcurate.pipeline.storage import expand_inputs
from vlcurate.schemas.extract import DOC_SCHEMA, PAIR_SCHEMA
from vlcurate.schemas.spark import to_spark

pytestmark = pytest.mark.spark


def all_warcs(warcs: Path) -> list[str]:
    return expand_inputs([str(warcs / "*.warc*")])


@pytest.fixture(scope="module")
def job_output(spark, warcs, tmp_path_factory):
    out = tmp_path_factory.mktemp("extract-job")
    stats = extract_job.run(all_warcs(warcs), str(out), ExtractConfig(), progress=False)
    return out, stats


def test_stats_add_up_and_match_the_library(job_output, warcs, tmp_path):
    out, stats = job_output
    on_disk = json.loads((out / "stats.json").read_text())
    assert on_disk == stats
    assert stats["in"] == stats["kept"] + sum(stats["dropped"].values())
    assert stats["files"]["in"] == stats["inputs"] == 9
    expected = [extract_file_to(p, str(tmp_path)) for p in all_warcs(warcs)]
    for key in ("in", "kept", "pairs", "docs"):
        assert stats[key] == sum(e[key] for e in expected), key
    assert (stats["in"], stats["kept"], stats["pairs"]) == (44, 43, 294)


def test_spark_reads_outputs_with_the_derived_schema(spark, job_output):
    out, stats = job_output
    pairs = spark.read.schema(to_spark(PAIR_SCHEMA)).parquet(str(out / "pairs"))
    docs = spark.read.schema(to_spark(DOC_SCHEMA)).parquet(str(out / "docs"))
    assert pairs.count() == stats["pairs"] and docs.count() == stats["docs"]
    assert pairs.select("uid").distinct().count() <= stats["pairs"]
    images_in_docs = (
        docs.selectExpr("size(filter(nodes, n -> n.type = 'image')) AS n").groupBy().sum("n")
    )
    assert images_in_docs.collect()[0][0] > 0


def test_rerun_resumes_without_redoing_work(job_output, warcs):
    out, stats = job_output
    again = extract_job.run(all_warcs(warcs), str(out), ExtractConfig(), progress=False)
    assert again["units_resumed"] == 9
    assert {k: again[k] for k in ("in", "kept", "dropped", "pairs", "docs")} == {
        k: stats[k] for k in ("in", "kept", "dropped", "pairs", "docs")
    }


def test_killed_run_resumes_and_leaves_no_partial_file(spark, warcs, tmp_path):
    inputs = all_warcs(warcs)
    out = tmp_path / "out"
    first = extract_job.run(inputs, str(out), ExtractConfig(), progress=False)
    # Simulate a kill while one file was being written: no marker, a half-written temporary.
    victim = shard_name(inputs[1])
    (out / "_done" / f"{victim}.json").unlink()
    (out / "pairs" / f"{victim}.parquet").unlink()
    (out / "pairs" / f"{victim}.parquet.tmp-deadbeef").write_bytes(b"PAR1 half a file")
    second = extract_job.run(inputs, str(out), ExtractConfig(), progress=False)
    assert second["units_resumed"] == len(inputs) - 1
    assert (second["kept"], second["pairs"]) == (first["kept"], first["pairs"])
    assert not list(out.rglob("*.tmp-*"))
    assert (out / "pairs" / f"{victim}.parquet").exists()


def test_relative_output_is_made_absolute_for_the_executors(spark, warcs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    stats = extract_job.run(
        [str(warcs / "whirlwind.warc.gz")], "rel/out", ExtractConfig(), progress=False
    )
    assert stats["pairs"] == 7
    assert len(list((tmp_path / "rel" / "out" / "pairs").glob("*.parquet"))) == 1


def test_listing_file_with_relative_paths_and_prefix(tmp_path, warcs):
    listing = tmp_path / "warc.paths.gz"
    with gzip.open(listing, "wt") as f:
        f.write("whirlwind.warc.gz\n\n# comment\nclipped.warc.gz\n")
    assert expand_inputs([str(listing)], prefix=str(warcs)) == sorted(
        [str(warcs / "whirlwind.warc.gz"), str(warcs / "clipped.warc.gz")]
    )
    local = tmp_path / "local.txt"
    local.write_text(str(warcs / "whirlwind.warc.gz") + "\n")
    assert expand_inputs([str(local), str(warcs / "whirl*.gz")]) == [
        str(warcs / "whirlwind.warc.gz")
    ]


def test_to_spark_converts_nested_types():
    schema = to_spark(DOC_SCHEMA)
    nodes = schema["nodes"].dataType
    assert nodes.typeName() == "array" and nodes.elementType["url"].dataType.typeName() == "string"
    assert to_spark(PAIR_SCHEMA)["warc_offset"].dataType.typeName() == "long"
    assert not to_spark(PAIR_SCHEMA)["uid"].nullable


def test_cli_help_explains_every_flag():
    from vlcurate.jobs.cli import build_parser

    parser = build_parser()
    help_text = parser._subparsers._group_actions[0].choices["extract"].format_help()
    for flag in (
        "--input",
        "--output",
        "--prefix",
        "--master",
        "--no-progress",
        "--max-page-bytes",
        "--max-alt-chars",
        "--max-url-length",
        "--keep-truncated",
        "--rows-per-group",
    ):
        assert flag in help_text
    for action in parser._subparsers._group_actions[0].choices["extract"]._actions:
        assert action.help, action.dest


@pytest.mark.slow
def test_curate_extract_console_script(tmp_path, warcs):
    curate = Path(sys.executable).parent / "curate"
    result = subprocess.run(
        [
            str(curate),
            "extract",
            "--input",
            str(warcs / "whirlwind.warc.gz"),
            "--output",
            str(tmp_path / "o"),
            "--master",
            "local[1]",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "image-text pairs:           7" in result.stdout
    assert json.loads((tmp_path / "o" / "stats.json").read_text())["pairs"] == 7


def test_demo_runs_the_whole_road_offline(spark, miniweb_clip, tmp_path, capsys):
    """Bundled WARCs through a recipe, the mini web's CLIP (trained once per test session by the
    fixture, which the demo finds in the cache), then `curate run demo` on the mini web on
    loopback: final shards and report.html, with the models named and how they were trained."""
    from vlcurate.jobs.cli import main

    argv = [
        "demo",
        "--output",
        str(tmp_path / "demo"),
        "--no-progress",
        "--recipes",
        "datacomp-basic",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "image-text pairs:         294" in out
    assert "accounting: in 44 == kept 43 + dropped 1" in out
    assert "sample pairs (294 in" in out and "[image] <image https://" in out
    assert "filter (datacomp-basic/1): 294 pairs in -> 56 candidates" in out
    assert "download: 275 candidates -> " in out
    shards = tmp_path / "demo" / "shards"
    stats = json.loads((shards / "stats.json").read_text())
    assert stats["in"] == 275 == stats["kept"] + sum(stats["dropped"].values())
    assert stats["kept"] >= 250 and len(list(shards.glob("*.tar"))) == 3
    assert "CLIP tiny-clip trained above on mini-web scenes" in out
    assert "held-out scenes, image->text R@1" in out
    final = json.loads((tmp_path / "demo" / "final" / "manifest.json").read_text())
    counts = final["counts"]
    assert counts["in"] == stats["kept"] == counts["kept"] + sum(counts["dropped"].values())
    assert {
        "duplicate_exact",
        "duplicate_phash",
        "watermark",
        "language",
        "clip_similarity",
    } <= set(counts["dropped"])
    assert sum(s["samples"] for s in final["shards"]) == counts["kept"] >= 150
    html = (tmp_path / "demo" / "report.html").read_text()
    assert "trained by curate on mini-web scenes" in html and "duplicate_phash" in html
    assert f"report: {tmp_path / 'demo' / 'report.html'}" in out
