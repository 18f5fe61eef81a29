"""A real SIGKILL of `curate download`'s parent process, mid-run, against a slow HTTP server on
127.0.0.1: the download's worker processes die with it (none writes into the output afterwards), and a
rerun finishes every shard, each tar whole and each sample once."""

import json
import os
import subprocess
import sys
import tarfile
import time
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.download import web
from tests.pairs import pairs_table

pytestmark = pytest.mark.slow

IMAGES = 48
PER_SHARD = 4
SHARDS = IMAGES // PER_SHARD
RUN_TAG = "VLCURATE_DOWNLOAD_TEST_RUN"  # in the environment of every process of the run


def processes_of_run(tag: str) -> list[int]:
    """The live processes whose environment carries ``RUN_TAG=tag`` (zombies carry none)."""
    wanted = f"{RUN_TAG}={tag}".encode()
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                environ = Path(entry.path, "environ").read_bytes()
            except OSError:
                continue
            if wanted in environ.split(b"\0"):
                found.append(int(entry.name))
    return found


def files_of(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def slow_web(tmp_path):
    """48 images, each answered after 0.4 s: a run long enough to be killed in its middle."""
    root = tmp_path / "www"
    root.mkdir()
    web.build(root, extra_images=IMAGES)
    with web.serve(root, delay=0.4) as base:
        yield base


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_of_the_parent_kills_its_workers_and_a_rerun_finishes(slow_web, tmp_path):
    urls = [f"{slow_web}/{i:03d}.jpg" for i in range(IMAGES)]
    candidates = tmp_path / "candidates.parquet"
    pq.write_table(pairs_table(*(f"picture {i}" for i in range(IMAGES)), urls=urls), candidates)
    out = tmp_path / "shards"
    tag = uuid.uuid4().hex
    env = {**os.environ, RUN_TAG: tag}
    argv = [
        str(Path(sys.executable).parent / "curate"),
        "download",
        *("--input", str(candidates), "--output", str(out), "--allow-private-network"),
        *("--processes", "2", "--threads", "2", "--samples-per-shard", str(PER_SHARD)),
        *("--image-size", "32", "--timeout", "20", "--host-concurrency", "4", "--host-delay", "0"),
    ]
    parent = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not list(out.glob("*_stats.json")) and time.monotonic() < deadline:
        assert parent.poll() is None, "the download ended before it could be killed"
        time.sleep(0.1)
    running = processes_of_run(tag)
    parent.kill()  # SIGKILL, to the parent alone: nothing of its own can clean up
    parent.wait()
    finished_before_kill = len(list(out.glob("*_stats.json")))
    assert len(running) >= 3  # the parent and its two worker processes
    assert 1 <= finished_before_kill < SHARDS, "the kill did not come in the middle of the run"

    deadline = time.monotonic() + 10
    while processes_of_run(tag) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_of_run(tag) == [], "processes of the killed run are still alive"
    left = files_of(out)
    time.sleep(2)
    assert files_of(out) == left  # nothing writes into the output any more
    finished = {p.name.split("_")[0] for p in out.glob("*_stats.json")}
    written = {name: (out / f"{name}.tar").stat().st_mtime_ns for name in finished}

    rerun = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["in"] == IMAGES == stats["kept"] + sum(stats["dropped"].values())
    assert stats["kept"] == IMAGES and stats["shards"] == SHARDS
    # Each shard is marked done as it finishes: the rerun resumes those finished before the
    # kill (one may have its _stats.json but not yet its marker: adopted without fetching).
    assert stats["units"]["kept"] == SHARDS and 1 <= stats["units_resumed"] <= finished_before_kill
    assert {n: (out / f"{n}.tar").stat().st_mtime_ns for n in finished} == written
    keys = []
    for shard in range(SHARDS):
        name = f"{shard:05d}"
        assert (out / f"{name}_stats.json").exists() and (out / "_done" / f"{name}.json").exists()
        with tarfile.open(out / f"{name}.tar") as tar:  # raises on a truncated tar
            members = tar.getmembers()
            for member in members:
                assert len(tar.extractfile(member).read()) == member.size
        keys += [m.name.rsplit(".", 1)[0] for m in members if m.name.endswith(".jpg")]
    assert len(keys) == len(set(keys)) == IMAGES
    assert processes_of_run(tag) == []
