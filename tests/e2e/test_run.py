"""`curate run`: the whole road in one command, killed during scoring and run again."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from vlcurate import miniweb

pytestmark = [pytest.mark.spark, pytest.mark.slow]

RECIPE = {
    "name": "run-test",
    "version": 1,
    "source": "test",
    "filters": ["char_length"],
    "dedup": {"uid": True, "max_per_url": 1},
    "download": {"image_size": 96, "resize_mode": "keep_ratio"},
    "score": {
        "model": "tiny-clip",
        "pretrained": None,
        "watermark": "none",
        "workers": 1,
        "batch_size": 8,
    },
    "select": {
        "nsfw_max": 0.5,
        "faces": "blur",
        "samples_per_shard": 25,
        "dedup": {"exact": True, "phash_max_distance": 2},
    },
}


def test_killed_run_resumes_where_it_stopped(tmp_path):
    port = miniweb.free_port()
    miniweb.build(tmp_path / "web", seed=1, port=port, n_shapes=30)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(RECIPE))
    out = tmp_path / "out"
    argv = [
        str(Path(sys.executable).parent / "curate"),
        "run",
        str(recipe),
        "--input",
        str(tmp_path / "web" / miniweb.WARC_FILE),
        "--output",
        str(out),
        "--master",
        "local[2]",
        "--allow-private-network",
        f"127.0.0.1:{port}",
        "--download-args",
        "--timeout 2 --processes 1 --threads 16 --samples-per-shard 30"
        " --host-concurrency 16 --host-delay 0",
        "--no-progress",
    ]
    with miniweb.serve(tmp_path / "web", port=port, slow_seconds=3):
        proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + 300
        while (
            not list(out.glob("scores/_done/*.json"))
            and proc.poll() is None
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
        assert not (out / "final").exists()
        scored = sorted(out.glob("scores/_done/*.json"))
        stamps = {p: p.stat().st_mtime_ns for p in [*scored, *out.glob("shards/*.tar")]}
        again = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items()), "done work was redone"
    assert "filter: done before" in again.stdout
    assert f"report: {out / 'report.html'}" in again.stdout
    for stage in ("extract", "candidates", "shards", "scores", "final"):
        stats = json.loads((out / stage / "stats.json").read_text())
        assert stats["in"] == stats["kept"] + sum(stats["dropped"].values()), stage
    score_stats = json.loads((out / "scores" / "stats.json").read_text())
    final = json.loads((out / "final" / "manifest.json").read_text())
    assert final["counts"]["in"] == score_stats["in"]
    assert sum(s["samples"] for s in final["shards"]) == final["counts"]["kept"] > 0
    assert not [p for p in out.rglob("*") if p.is_file() and ".tmp" in p.name]
    assert (out / "report.html").stat().st_size > 10_000

    partial = subprocess.run(
        [*argv[:2], str(recipe), "--output", str(out), "--from", "select", "--no-progress"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert partial.returncode == 0, partial.stderr[-2000:]
    assert "run [1/1] select" in partial.stdout


def test_run_refuses_a_bad_recipe_before_any_work(tmp_path, capsys):
    from vlcurate.jobs.run import main

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**RECIPE, "select": {"nsfw_maximum": 0.5}}))
    assert main([str(bad), "--input", "x.warc.gz", "--output", str(tmp_path / "out")]) == 2
    assert "unknown parameter 'nsfw_maximum'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
