"""`curate extract` killed with SIGKILL part-way (driver, JVM and Python workers) resumes: the
files done keep their outputs and markers, the rest are extracted, and the totals equal a run
that was never killed."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.spark, pytest.mark.slow]

COPIES = 40


def curate(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "curate"), "extract", *args, "--no-progress"]


def test_a_killed_extract_resumes(warcs, tmp_path):
    crawl = tmp_path / "crawl"
    crawl.mkdir()
    for i in range(COPIES):  # one Spark task per file: enough of them to kill part-way
        source = warcs / f"dolma-sample-000{i % 2}.warc.gz"
        shutil.copy(source, crawl / f"part-{i:03d}.warc.gz")
    inputs = ["--input", str(crawl / "*.warc.gz"), "--master", "local[1]"]
    out = tmp_path / "out"
    proc = subprocess.Popen(
        curate(*inputs, "--output", str(out)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while len(list(out.glob("_done/*.json"))) < 3 and time.monotonic() < deadline:
        assert proc.poll() is None, "extract ended before it could be killed"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = sorted(out.glob("_done/*.json"))
    assert 3 <= len(done) < COPIES and not (out / "stats.json").exists()
    stamps = {p: p.stat().st_mtime_ns for p in done}
    again = subprocess.run(curate(*inputs, "--output", str(out)), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items()), "done files were redone"
    resumed = json.loads((out / "stats.json").read_text())
    assert resumed["units_resumed"] == len(done) and resumed["units"]["kept"] == COPIES
    clean = tmp_path / "clean"
    subprocess.run(curate(*inputs, "--output", str(clean)), check=True, capture_output=True)
    reference = json.loads((clean / "stats.json").read_text())
    for key in ("in", "kept", "dropped", "pairs", "docs", "files", "images"):
        assert resumed[key] == reference[key], key
    assert not list(out.rglob("*.tmp-*"))
    assert len(list((out / "pairs").glob("*.parquet"))) == COPIES
