"""The shard checks beside the scoring (pipeline/score/checks.py): a window of shards checked
ahead, refused shards skipped by the DataLoader's workers and counted in order, a check's
error raised at its shard after the shards before it are done."""

import dataclasses
import json
import os
import threading

import pytest

from vlcurate.pipeline.score import checks as checks_module
from vlcurate.pipeline.score import inputs
from vlcurate.pipeline.score.checks import ShardChecks
from vlcurate.pipeline.score.shards import ShardStream, spool, unspool
from vlcurate.pipeline.score.stage import score_shards

from .raw_shards import FAST, small_photos, write_raw_shard


def _shards(folder, n: int, per_shard: int = 3) -> list[str]:
    folder.mkdir()
    return [write_raw_shard(folder, s, small_photos(per_shard, s)) for s in range(n)]


@pytest.mark.timeout(120)  # a reader waiting on the window would hang
def test_checks_run_a_window_ahead_and_a_waiting_reader_moves_it(tmp_path):
    tars = _shards(tmp_path / "in", 4)
    os.remove(inputs.stats_path(tars[1]))
    checks = ShardChecks(tars, shared=False, ahead=1)
    checks.start()
    assert checks.reason(0) is None
    assert checks.taken == 1  # the others wait for the window
    # a reader past the window (nothing finished yet) has its shards checked as it reaches them
    work = lambda: lambda i, sample: {"key": sample["__key__"]}  # noqa: E731
    items = list(ShardStream(tars, work, None, checks.verdicts))
    assert [checks.reason(n) for n in range(4)] == [None, inputs.NO_STATS_JSON, None, None]
    checks.close()
    by_shard = [[item for item in items if item["shard"] == n] for n in range(4)]
    assert by_shard[1] == [{"shard": 1, "end": 0}]  # refused: not read
    assert [len(s) for s in by_shard] == [4, 1, 4, 4]  # three samples and the end


@pytest.mark.timeout(120)
def test_the_first_shard_is_checked_alone(tmp_path, monkeypatch):
    """Every worker waits for shard 0 before its first batch: no other check (on a store, a
    fetch on the same client) may start beside it; the others then run together."""
    tars = _shards(tmp_path / "in", 3)
    started, beside_first, another = [], [], threading.Event()

    def check(shard):
        started.append(shard)
        if shard == tars[0]:
            another.wait(0.5)  # time for a second thread to take a shard, were it allowed to
            beside_first.extend(started[1:])
        else:
            another.set()

    monkeypatch.setattr(checks_module, "check_shard", check)
    checks = ShardChecks(tars, shared=False)
    checks.start()
    assert [checks.reason(n) for n in range(3)] == [None, None, None]
    checks.close()
    assert beside_first == []
    assert started[0] == tars[0] and sorted(started[1:]) == tars[1:]


@pytest.mark.timeout(120)  # a reader waiting on the window would hang
def test_a_run_of_refused_shards_longer_than_the_window(tmp_path, monkeypatch):
    """Workers pass refused shards without a sample, so the ends the main process needs to
    move the window sit in their unfilled batches: they must not wait on the window."""
    monkeypatch.setattr(checks_module, "CHECKS_AHEAD", 2)
    tars = _shards(tmp_path / "in", 8, per_shard=2)
    for tar in tars[1:7]:
        os.remove(inputs.stats_path(tar))
    out = tmp_path / "out"
    config = dataclasses.replace(FAST, workers=2, batch_size=16)
    stats = score_shards(tars, str(out), config, progress=False)
    assert stats["units"]["dropped"] == {inputs.NO_STATS_JSON: 6}
    assert (stats["in"], stats["kept"], stats["shards"]) == (4, 4, 2)


def test_refused_shards_between_scored_ones_with_worker_processes(tmp_path):
    tars = _shards(tmp_path / "in", 4)
    os.remove(inputs.sidecar_path(tars[1]))
    os.truncate(tars[2], os.path.getsize(tars[2]) // 2)
    out = tmp_path / "out"
    config = dataclasses.replace(FAST, workers=2)
    stats = score_shards(tars, str(out), config, progress=False)
    assert stats["refused_units"] == {"00001": 1, "00002": 1}
    assert (stats["in"], stats["kept"], stats["shards"]) == (6, 6, 2)
    assert sorted(p.name for p in (out / "_done").iterdir()) == ["00000.json", "00003.json"]


def test_a_check_that_fails_fails_the_run_at_its_shard(tmp_path):
    tars = _shards(tmp_path / "in", 3)
    os.remove(tars[1])
    os.mkdir(tars[1])  # a folder where the tar should be: reading it raises
    out = tmp_path / "out"
    with pytest.raises(IsADirectoryError):
        score_shards(tars, str(out), FAST, progress=False)
    assert sorted(p.name for p in (out / "_done").iterdir()) == ["00000.json"]
    marker = json.loads((out / "_done" / "00000.json").read_text())
    assert marker["stats"]["kept"] == 3


def test_a_reader_without_verdicts_reads_the_local_copy_of_a_stored_shard(tmp_path):
    """The OCR pass reads a shard after its check (ShardStream without verdicts): from the
    check's local copy while there is one, not from the store a second time."""
    (tar,) = _shards(tmp_path / "in", 1)
    url = "memory://nowhere/00000.tar"  # nothing there: a read of the source would fail
    with open(tar, "rb") as source:
        assert spool(url, source, os.path.getsize(tar)) is not None
    work = lambda: lambda i, sample: {"key": sample["__key__"]}  # noqa: E731
    try:
        items = list(ShardStream([url], work, [{0, 2}]))
    finally:
        unspool(url)
    assert [item["key"] for item in items[:-1]] == ["000000000", "000000002"]
    assert items[-1] == {"shard": 0, "end": 3}
