"""Reading shards: the fast ustar header index agrees with tarfile, and falls back to it."""

import io
import tarfile

import pytest
import webdataset as wds

from vlcurate.pipeline.score.shards import ShardStream, samples, tar_index, tar_samples


def tarfile_index(path) -> list[tuple[str, int, int]]:
    with tarfile.open(path) as tar:
        return [(m.name, m.offset_data, m.size) for m in tar if m.isfile()]


def webdataset_shard(path, n=5) -> str:
    with wds.TarWriter(str(path)) as sink:
        for i in range(n):
            sink.write(
                {
                    "__key__": f"{i:09d}",
                    "jpg": bytes([i]) * (700 * i),
                    "txt": f"caption {i}",
                    "json": b"{}",
                }
            )
    return str(path)


def test_fast_index_equals_tarfile_on_a_webdataset_shard(tmp_path):
    shard = webdataset_shard(tmp_path / "00000.tar")
    with open(shard, "rb") as f:
        assert tar_index(f) == tarfile_index(shard)


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_long_names_and_extensions_fall_back_to_tarfile(tmp_path, fmt):
    path = tmp_path / "long.tar"
    long = "d" * 120 + "/0001.jpg"
    with tarfile.open(
        path, "w", format=fmt, pax_headers={"comment": "x"} if fmt == tarfile.PAX_FORMAT else None
    ) as tar:
        for name, data in ((long, b"abc"), ("0001.txt", "héllo".encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with open(path, "rb") as f:
        assert tar_index(f) == tarfile_index(path)
    assert [s["jpg"] for _, s in samples(str(path))] == [b"abc"]


def test_samples_skip_unwanted_and_end_with_the_count(tmp_path):
    shard = webdataset_shard(tmp_path / "00000.tar", n=7)
    got = list(tar_samples(shard, wanted=lambda i: i % 3 == 1))
    assert [i for i, s in got if s is not None] == [1, 4]
    assert got[-1] == (7, None)
    assert got[0][1]["txt"] == b"caption 1" and len(got[1][1]["jpg"]) == 2800


def test_stream_splits_shards_between_workers_and_marks_their_ends(tmp_path):
    shards = [webdataset_shard(tmp_path / f"{n:05d}.tar", n=4 + n) for n in range(2)]
    loader = __import__("torch").utils.data.DataLoader(
        ShardStream(shards, lambda: lambda i, s: {"index": i}), batch_size=None, num_workers=2
    )
    items = list(loader)
    ends = [i for i in items if "end" in i]
    assert sorted((e["shard"], e["end"]) for e in ends) == [(0, 4), (0, 4), (1, 5), (1, 5)]
    seen = sorted((i["shard"], i["index"]) for i in items if "end" not in i)
    assert seen == [(0, i) for i in range(4)] + [(1, i) for i in range(5)]
