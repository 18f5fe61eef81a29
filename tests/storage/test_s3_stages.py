"""Stages with their inputs and outputs in a bucket (moto's real S3 server on 127.0.0.1, real
s3fs and botocore): the same rows and stats as on local disk, resumable, and the final shards
read back by webdataset and by the training loader."""

import json
from pathlib import Path

import fsspec
import pytest

from tests.pairs import KEEP_ALL
from vlcurate.jobs import cli
from vlcurate.jobs import filter as filter_job
from vlcurate.pipeline import storage
from vlcurate.pipeline.recipe import parse_recipe

WARCS = Path(__file__).resolve().parents[1] / "data" / "warc"
# a clean crawl sample, a file cut short and one with a damaged record
FILES = ("dolma-sample-0000.warc.gz", "clipped.warc.gz", "warcio-example-trunc.warc")

pytestmark = [pytest.mark.spark]


def _put(local: Path, url: str) -> None:
    fsspec.filesystem("s3").put(str(local), url)


def _rows(url: str, folder: str) -> list[dict]:
    """Every row of OUTPUT/folder, in a fixed order, less the column naming the input file."""
    table = storage.read_table(storage.join(url, folder))
    rows = [{k: v for k, v in r.items() if k != "warc_path"} for r in table.to_pylist()]
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def _stats(url: str) -> dict:
    stats = json.loads(storage.read_text(storage.join(url, "stats.json")))
    stats.pop("refused_units", None)  # keyed by unit names, which hash the input's URL
    return stats


def _extract(inputs: list[str], output: str) -> None:
    argv = ["extract", "--input", *inputs, "--output", output, "--no-progress"]
    assert cli.main([*argv, "--master", "local[2]"]) == 0


@pytest.fixture(scope="module")
def extracted(s3, spark, tmp_path_factory):
    """The same WARC files extracted from disk to disk and from the bucket to the bucket."""
    local = tmp_path_factory.mktemp("extract-local")
    root = s3.prefix("extract")
    for name in FILES:
        _put(WARCS / name, storage.join(root, "crawl", name))
    _extract([str(WARCS / n) for n in FILES], str(local / "out"))
    _extract([storage.join(root, "crawl", "*.warc*")], storage.join(root, "out"))
    return str(local / "out"), storage.join(root, "out")


def test_extract_from_and_to_s3_gives_the_local_rows_and_stats(extracted):
    local, remote = extracted
    assert _rows(remote, "pairs") == _rows(local, "pairs")
    assert _rows(remote, "docs") == _rows(local, "docs")
    assert _stats(remote) == _stats(local)
    assert _stats(remote)["units"]["in"] == len(FILES)
    fs, path = fsspec.core.url_to_fs(remote)
    left = [p for p in fs.find(path) if ".tmp-" in p or "_partial" in p]
    assert left == []


def test_a_rerun_on_s3_skips_the_done_files(extracted, capsys):
    _, remote = extracted
    before = json.loads(storage.read_text(storage.join(remote, "stats.json")))
    crawl = storage.join(remote.rsplit("/", 1)[0], "crawl", "*.warc*")
    _extract([crawl], remote)
    after = json.loads(storage.read_text(storage.join(remote, "stats.json")))
    assert after["units_resumed"] == before["units"]["kept"] > 0
    assert {k: v for k, v in after.items() if k != "units_resumed"} == {
        k: v for k, v in before.items() if k != "units_resumed"
    }
    assert "already done" in capsys.readouterr().out


@pytest.mark.slow
def test_filter_reads_and_writes_s3_through_arrow(extracted, tmp_path):
    """Spark has no S3 connector here: the filter job's dedup pass reads the annotated files
    and writes the candidates through pyarrow and s3fs (jobs/parquet.py)."""
    local, remote = extracted
    recipe = parse_recipe(KEEP_ALL)
    filter_job.run(local, recipe, str(tmp_path / "cand"), progress=False)
    remote_cand = remote.rsplit("/", 1)[0] + "/cand"
    filter_job.run(remote, recipe, remote_cand, progress=False)
    assert _rows(remote_cand, "pairs") == _rows(str(tmp_path / "cand"), "pairs")
    assert _stats(remote_cand) == _stats(str(tmp_path / "cand"))
    assert storage.glob(storage.join(remote_cand, "pairs", "*.parquet"))
