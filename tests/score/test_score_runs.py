"""`curate score` as a run: bad settings refused before any work, random weights that are the
same in every process, and a scoring process killed (SIGKILL) in a two-process run failing the
run within seconds, the rerun finishing it."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from vlcurate.jobs.score import main
from vlcurate.pipeline.config import ConfigError
from vlcurate.pipeline.score.clip import ClipScorer
from vlcurate.pipeline.score.stage import ScoreConfig, score_shards

from .raw_shards import FAST, small_photos, write_shards

CURATE = str(Path(sys.executable).parent / "curate")
FLAGS = ["--model", "tiny-clip", "--pretrained", "none", "--device", "cpu", "--workers", "0"]
FLAGS += ["--faces", "none", "--nsfw", "none", "--watermark", "none", "--no-progress"]


def exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse, or a config refused while the flags are read
        return e.code


BAD = [
    (["--batch-size", "0"], "score.batch_size: 0"),
    (["--workers", "-1"], "score.workers: -1"),
    (["--processes", "-2"], "score.processes: -2"),
    (["--faces", "opencv"], "score.faces: 'opencv'"),
    (["--nsfw", "nudenet"], "score.nsfw: 'nudenet'"),
    (["--watermark", "head:"], "score.watermark: 'head:'"),
    (["--watermark-min-clip", "1.5"], "score.watermark_min_clip: 1.5"),
    (["--conf", "spark.executor.memory"], "--conf"),
]


@pytest.mark.parametrize(("flags", "message"), BAD)
def test_bad_settings_are_refused_with_rc_2_before_any_work(tmp_path, capsys, flags, message):
    shards = write_shards(tmp_path / "in", small_photos(2), per_shard=2)
    out = tmp_path / "out"
    argv = ["--input", str(Path(shards[0]).parent), "--output", str(out), *FLAGS, *flags]
    assert exit_code(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_the_config_checks_its_values_when_made():
    with pytest.raises(ConfigError, match="batch_size"):
        ScoreConfig(batch_size=0)
    with pytest.raises(ConfigError, match="head:FILE"):
        ScoreConfig(nsfw="yahoo")
    assert ScoreConfig(nsfw="head:nsfw.pt", watermark="zero-shot", watermark_min_clip=-1).nsfw


def test_random_weights_are_the_same_whatever_the_random_state():
    first = ClipScorer("tiny-clip", None).net.state_dict()
    np.random.seed(5)
    __import__("torch").manual_seed(123)
    second = ClipScorer("tiny-clip", None).net.state_dict()
    assert all(np.array_equal(first[k].numpy(), second[k].numpy()) for k in first)


def test_random_weights_score_the_same_in_another_process(tmp_path):
    """``--pretrained none`` in a fresh process (a resume, another worker) gives the very same
    scores and embeddings as here."""
    shards = write_shards(tmp_path / "in", small_photos(6), per_shard=3)
    here, there = tmp_path / "here", tmp_path / "there"
    score_shards(shards, str(here), FAST, progress=False)
    argv = [CURATE, "score", "--input", str(tmp_path / "in"), "--output", str(there), *FLAGS]
    argv += ["--batch-size", str(FAST.batch_size)]
    subprocess.run(argv, check=True, capture_output=True, timeout=600)
    for name in ("00000", "00001"):
        a = pq.read_table(here / "scores" / f"{name}.parquet").column("clip_tiny_clip_sim")
        b = pq.read_table(there / "scores" / f"{name}.parquet").column("clip_tiny_clip_sim")
        assert a.to_pylist() == b.to_pylist()
        for folder in ("img_emb", "text_emb"):
            same = np.load(here / folder / f"{name}.npy"), np.load(there / folder / f"{name}.npy")
            assert np.array_equal(*same)
    done = [json.loads(p.read_text()) for p in sorted((there / "_done").glob("*.json"))]
    mine = json.loads((here / "_done" / "00000.json").read_text())
    assert {m["settings_digest"] for m in done} == {mine["settings_digest"]}


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in cmdline:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_a_killed_worker_fails_a_two_process_run_within_seconds(tmp_path):
    shards = write_shards(tmp_path / "in", small_photos(480, side=256), per_shard=30)
    out = tmp_path / "out"
    argv = ["--input", str(tmp_path / "in"), "--output", str(out), *FLAGS, "--batch-size", "2"]
    run = subprocess.Popen(
        [CURATE, "score", *argv, "--processes", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while not list(out.glob("_done/*.json")) and run.poll() is None:
        assert time.monotonic() < deadline, "no shard was scored in time"
        time.sleep(0.05)
    workers = _children(run.pid)
    assert len(workers) == 2 and run.poll() is None, "the run ended before a worker was killed"
    os.kill(workers[0], signal.SIGKILL)  # an OOM kill, say
    killed = time.monotonic()
    _, err = run.communicate(timeout=120)
    assert time.monotonic() - killed < 30  # not a hang
    assert run.returncode == 1 and "error: a worker process" in err and "died" in err
    time.sleep(1)
    assert not _alive(workers[1]), "the other worker outlived the run"
    finished = len(list(out.glob("_done/*.json")))
    assert 1 <= finished < len(shards)
    assert exit_code(argv) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["units_resumed"] == finished and stats["shards"] == len(shards) == 16
    assert stats["in"] == 480 == stats["kept"]


@pytest.mark.slow
def test_a_refused_shard_does_not_stop_a_two_process_run(tmp_path):
    """With two processes too, a partial shard is refused by name and the others are scored."""
    shards = write_shards(tmp_path / "in", small_photos(8), per_shard=2)
    os.remove(shards[2].replace(".tar", "_stats.json"))
    stats = score_shards(shards, str(tmp_path / "out"), replace(FAST, processes=2), False)
    assert stats["refused_units"] == {"00002": 1} and stats["shards"] == 3
    assert stats["units"]["dropped"] == {"no_stats_json": 1}
