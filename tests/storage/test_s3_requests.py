"""How many requests the runner and the score stage's shard check send to S3 (moto's server on
127.0.0.1): each costs a round trip, about 8 ms on loopback and more on a real store, so a HEAD
before every read or a listing per folder shows up here before it shows in a benchmark."""

import collections

import fsspec
import pytest
import s3fs
from fsspec.asyn import sync_wrapper

from tests.score.raw_shards import PHOTOS, jpeg, write_raw_shard
from tests.storage.test_s3_storage import _Double
from vlcurate.pipeline import stage as stage_mod
from vlcurate.pipeline import storage
from vlcurate.pipeline.score import inputs, shards


@pytest.fixture
def requests(monkeypatch):
    """The S3 calls made while the test runs, by method (every s3fs request goes through
    ``_call_s3``; ``call_s3`` is its blocking twin, bound when the class was made)."""
    calls = collections.Counter()
    original = s3fs.S3FileSystem._call_s3

    async def counted(self, method, *args, **kwargs):
        calls[method] += 1
        return await original(self, method, *args, **kwargs)

    monkeypatch.setattr(s3fs.S3FileSystem, "_call_s3", counted)
    monkeypatch.setattr(s3fs.S3FileSystem, "call_s3", sync_wrapper(counted))
    return calls


def test_a_stage_on_s3_costs_three_requests_a_unit_and_five_a_run(s3, requests):
    root = s3.prefix("requests")
    fs = fsspec.filesystem("s3")
    inputs = [storage.join(root, "in", f"{i}.txt") for i in range(3)]
    for i, url in enumerate(inputs):
        fs.pipe(url, str(i + 1).encode())
    out = storage.join(root, "out")
    requests.clear()
    stage_mod.run_stage(_Double(out, inputs))
    # the run: the output is no file, the markers, the killed uploads (before and after), stats
    # a unit: its input read (no HEAD first), its output and its marker put
    assert requests == {
        "list_objects_v2": 2,
        "list_multipart_uploads": 2,
        "get_object": 3,
        "put_object": 3 * 2 + 1,
    }
    requests.clear()
    summary = stage_mod.run_stage(_Double(out, inputs))
    assert summary["units_resumed"] == 3
    assert requests == {
        "list_objects_v2": 2,
        "list_multipart_uploads": 1,  # nothing ran, so nothing to clean after it
        "get_object": 3,  # each marker read once, not looked for first
        "put_object": 1,
    }


def test_the_shard_check_lists_once_and_reads_the_tar_and_sidecar(s3, tmp_path, requests):
    photo = jpeg(PHOTOS["coffee"])
    write_raw_shard(tmp_path, 0, [(f"k{i}", photo, f"cup {i}") for i in range(3)])
    folder = s3.prefix("check")
    fs = fsspec.filesystem("s3")
    names = ("00000.tar", "00000.parquet", "00000_stats.json")
    fs.put([str(tmp_path / n) for n in names], [f"{folder}/{n}" for n in names])
    requests.clear()
    assert inputs.check_shard(f"{folder}/00000.tar") is None
    assert requests == {"list_objects_v2": 1, "get_object": 2}  # no HEAD, no exists
    requests.clear()
    read = [s["txt"] for _, s in shards.samples(f"{folder}/00000.tar")]
    assert read == [b"cup 0", b"cup 1", b"cup 2"]
    assert requests == {}  # the scoring reads the copy the check made, not the store again
    shards.unspool(f"{folder}/00000.tar")
    assert shards._SPOOLED == {}
    whole = fs.cat_file(f"{folder}/00000.tar")
    fs.pipe(f"{folder}/00000.tar", whole[: len(whole) // 2])
    assert inputs.check_shard(f"{folder}/00000.tar") == inputs.TRUNCATED_TAR
    assert shards._SPOOLED == {}  # a refused shard's copy is gone at once
    fs.rm(f"{folder}/00000_stats.json")
    assert inputs.check_shard(f"{folder}/00000.tar") == inputs.NO_STATS_JSON


def test_read_table_gets_a_parquet_file_in_one_request_and_reads_folders(s3, requests):
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = s3.prefix("tables")
    table = pa.table({"key": ["a", "b"], "n": [1, 2]})
    fs = fsspec.filesystem("s3")
    for path in ("t.parquet", "spark.parquet/part-0.parquet", "spark.parquet/part-1.parquet"):
        with fs.open(storage.join(root, path), "wb") as f:
            pq.write_table(table, f)
    requests.clear()
    assert storage.read_table(storage.join(root, "t.parquet"), columns=["key"]).num_rows == 2
    assert requests == {"get_object": 1}  # not HEADs and ranged reads through Arrow
    assert storage.read_table(storage.join(root, "spark.parquet")).num_rows == 4  # a folder


def test_a_warc_file_on_s3_is_opened_once(s3, warcs, requests):
    from vlcurate.pipeline.extract.records import read_units
    from vlcurate.pipeline.stats import StageStats

    source = warcs / "dolma-sample-0000.warc.gz"
    url = storage.join(s3.prefix("warc-reads"), source.name)
    fsspec.filesystem("s3").put(str(source), url)
    requests.clear()
    units = list(read_units(url, StageStats("extract"), lambda record, offset: (None, offset, 0)))
    assert units  # every record read
    assert requests["head_object"] == 1  # its size, once: not once to test for empty, again to open
    assert set(requests) <= {"head_object", "get_object"}
