"""The trainers' shard reader: samples grouped by key inside each drawn shard."""

import io
import tarfile
import warnings

import webdataset as wds

from vlcurate.pipeline.train.stream import shard_samples


def write_shard(path, keys):
    with tarfile.open(path, "w") as tar:
        for key in keys:
            for ext, data in (("txt", f"caption {key}".encode()), ("json", b"{}")):
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def test_a_one_sample_shard_drawn_twice_in_a_row_gives_two_samples(tmp_path):
    """A selection's last shard often holds one sample; resampled, the same shard comes twice
    in a row, and each draw is its own sample (webdataset's tarfile_to_samples would merge the
    two, see a duplicate file name, and drop the sample with a warning)."""
    one, two = tmp_path / "00000.tar", tmp_path / "00001.tar"
    write_shard(one, ["000000000"])
    write_shard(two, ["000010000", "000010001"])
    draws = [str(one), str(one), str(two), str(one)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = list(wds.DataPipeline(wds.SimpleShardList(draws), shard_samples()))
    assert [s["__key__"] for s in got] == ["000000000"] * 2 + ["000010000", "000010001"] + [
        "000000000"
    ]
    assert all(set(s) == {"__key__", "__url__", "txt", "json"} for s in got)
    assert [s["__url__"] for s in got] == [str(one)] * 2 + [str(two)] * 2 + [str(one)]


def test_a_broken_shard_is_skipped_with_a_warning_and_the_next_is_read(tmp_path):
    bad, good = tmp_path / "bad.tar", tmp_path / "good.tar"
    bad.write_bytes(b"not a tar file at all" * 100)
    write_shard(good, ["000000007"])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        got = list(wds.DataPipeline(wds.SimpleShardList([str(bad), str(good)]), shard_samples()))
    assert [s["__key__"] for s in got] == ["000000007"]
    assert seen
