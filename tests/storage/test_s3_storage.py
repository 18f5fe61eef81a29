"""The storage helpers on a real S3 endpoint (moto's server on 127.0.0.1, real s3fs)."""

import json

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vlcurate.pipeline import stage as stage_mod
from vlcurate.pipeline import storage
from vlcurate.pipeline.stats import StageStats


def _fs():
    return fsspec.filesystem("s3")


def _keys(prefix: str) -> list[str]:
    fs, path = fsspec.core.url_to_fs(prefix)
    return sorted(p.removeprefix(path + "/") for p in fs.find(path))


def _uploads(s3, prefix: str) -> list:
    key = prefix.removeprefix(f"s3://{s3.bucket}/")
    answer = _fs().call_s3("list_multipart_uploads", Bucket=s3.bucket, Prefix=key)
    return answer.get("Uploads", [])


def test_expand_inputs_globs_listings_and_missing(s3):
    root = s3.prefix("inputs")
    fs = _fs()
    for name in ("a/1.warc.gz", "a/2.warc.gz", "b/3.warc.gz"):
        fs.pipe(storage.join(root, name), b"x")
    fs.pipe(storage.join(root, "warc.paths"), b"a/1.warc.gz\n# a comment\n\nb/3.warc.gz\n")
    assert storage.expand_inputs([storage.join(root, "*/*.warc.gz")]) == [
        storage.join(root, n) for n in ("a/1.warc.gz", "a/2.warc.gz", "b/3.warc.gz")
    ]
    assert storage.expand_inputs([storage.join(root, "warc.paths")]) == [
        storage.join(root, "a/1.warc.gz"),
        storage.join(root, "b/3.warc.gz"),
    ]
    assert storage.expand_inputs([storage.join(root, "a/1.warc.gz")]) == [
        storage.join(root, "a/1.warc.gz")
    ]
    with pytest.raises(storage.InputError, match="not found"):
        storage.expand_inputs([storage.join(root, "nothing.warc.gz")])
    with pytest.raises(storage.InputError, match="matched no file"):
        storage.expand_inputs([storage.join(root, "c/*.warc.gz")])


@pytest.mark.parametrize("size", [10, 12 * 2**20])  # one PUT; a multipart upload
def test_atomic_open_leaves_nothing_when_the_block_fails(s3, size):
    root = s3.prefix("atomic")
    target = storage.join(root, "out.bin")
    fs, path = fsspec.core.url_to_fs(target)
    with pytest.raises(RuntimeError):
        with storage.atomic_open(target) as f:
            f.blocksize = 5 * 2**20  # S3's smallest part: parts go up before the failure
            f.write(b"x" * size)
            if size > f.blocksize:
                f.flush()
                assert f.mpu is not None  # the upload had begun
            raise RuntimeError("killed mid-write")
    assert not fs.exists(path)
    assert _keys(root) == []
    assert _uploads(s3, root) == []  # aborted, not left to linger


def test_atomic_open_writes_whole_objects_and_text(s3):
    root = s3.prefix("atomic")
    with storage.atomic_open(storage.join(root, "big.bin")) as f:
        f.blocksize = 5 * 2**20
        f.write(b"y" * (11 * 2**20))
    storage.write_text_atomic(storage.join(root, "a.json"), '{"é": 1}\n')
    assert storage.read_text(storage.join(root, "a.json")) == '{"é": 1}\n'
    assert _fs().size(storage.join(root, "big.bin")) == 11 * 2**20
    assert _keys(root) == ["a.json", "big.bin"]  # no temporaries, no copies


def test_parquet_writer_on_s3(s3):
    root = s3.prefix("parquet")
    table = pa.table({"k": list(range(1000)), "v": [str(i) for i in range(1000)]})
    target = storage.join(root, "t.parquet")
    with storage.parquet_writer(target, table.schema) as w:
        w.write_table(table)
    fs, path = fsspec.core.url_to_fs(target)
    assert pq.read_table(path, filesystem=fs).equals(table)
    with pytest.raises(ValueError):
        with storage.parquet_writer(storage.join(root, "bad.parquet"), table.schema) as w:
            w.write_table(table)
            raise ValueError("bad row")
    assert _keys(root) == ["t.parquet"]


def test_remove_stale_temporaries_and_dangling_uploads(s3):
    root = s3.prefix("stale")
    fs = _fs()
    fs.pipe(storage.join(root, "d", "x.parquet.tmp-1234abcd"), b"old")
    fs.pipe(storage.join(root, "d", "y.parquet"), b"keep")
    bucket, key = storage.join(root, "d", "z.tar").removeprefix("s3://").split("/", 1)
    fs.call_s3("create_multipart_upload", Bucket=bucket, Key=key)  # a killed writer's
    assert len(_uploads(s3, storage.join(root, "d"))) == 1
    assert storage.remove_stale_temporaries(storage.join(root, "d")) == 2
    assert _keys(root) == ["d/y.parquet"]
    assert _uploads(s3, root) == []
    assert storage.remove_stale_temporaries(storage.join(root, "none")) == 0


class _Double(stage_mod.Stage):
    """A stage whose units double a number in a text file, for the runner on S3."""

    name = "double"

    def __init__(self, output: str, inputs: list[str], fail: str | None = None):
        self.output, self.inputs, self.fail = output, inputs, fail

    def units(self):
        return [stage_mod.Unit(u.rsplit("/", 1)[-1].split(".")[0], u) for u in self.inputs]

    def process(self, unit, device="cpu"):
        if unit.name == self.fail:
            raise RuntimeError("killed")
        stats = StageStats(self.name)
        value = int(storage.read_text(unit.input))
        storage.write_text_atomic(storage.join(self.output, f"{unit.name}.txt"), str(2 * value))
        stats.tally("numbers").keep()
        return stats


def test_run_stage_on_s3_markers_stats_and_resume(s3):
    root = s3.prefix("stage")
    fs = _fs()
    inputs = [storage.join(root, "in", f"{i}.txt") for i in range(3)]
    for i, url in enumerate(inputs):
        fs.pipe(url, str(i + 1).encode())
    out = storage.join(root, "out")
    with pytest.raises(RuntimeError):
        stage_mod.run_stage(_Double(out, inputs, fail="2"))
    assert _keys(out) == ["0.txt", "1.txt", "_done/0.json", "_done/1.json"]  # no marker for 2
    summary = stage_mod.run_stage(_Double(out, inputs))
    assert summary["units_resumed"] == 2
    assert json.loads(storage.read_text(storage.join(out, "stats.json"))) == summary
    assert [storage.read_text(storage.join(out, f"{i}.txt")) for i in range(3)] == ["2", "4", "6"]
    marker = json.loads(storage.read_text(storage.join(out, "_done", "2.json")))
    assert marker["input"] == inputs[2]
    fs.pipe(storage.join(root, "file"), b"x")
    with pytest.raises(stage_mod.OutputError):
        stage_mod.run_stage(_Double(storage.join(root, "file"), inputs))


class _LosesATask:
    """An executor one of whose tasks is lost mid-write while the stage runs (its unfinished
    multipart upload stays behind: on an object store a write leaves no temporary); Spark
    reruns it and it succeeds."""

    def run(self, stage, units):
        from vlcurate.pipeline.executors import LocalExecutor

        fs = _fs()
        bucket, key = storage.join(stage.output, "1.txt").removeprefix("s3://").split("/", 1)
        fs.call_s3("create_multipart_upload", Bucket=bucket, Key=key)
        return LocalExecutor(progress=False).run(stage, units)


def test_run_stage_removes_what_a_lost_task_left_once_every_task_is_done(s3):
    root = s3.prefix("lost")
    inputs = [storage.join(root, "in", f"{i}.txt") for i in range(2)]
    for i, url in enumerate(inputs):
        _fs().pipe(url, str(i + 1).encode())
    out = storage.join(root, "out")
    stage = _Double(out, inputs)
    stage.folders = ("",)
    stage_mod.run_stage(stage, _LosesATask())
    assert _keys(out) == ["0.txt", "1.txt", "_done/0.json", "_done/1.json", "stats.json"]
    assert _uploads(s3, out) == []


def test_brace_pattern_keeps_the_scheme(s3):
    shards = [f"s3://{s3.bucket}/final/{i:05d}.tar" for i in range(3)]
    pattern = storage.brace_pattern(shards)
    assert pattern == f"s3://{s3.bucket}/final/{{00000..00002}}.tar"
    assert storage.expand_shards(pattern) == shards
