"""`curate run demo` end to end on a standalone cluster of two workers, with the crawl and every
output in an S3 endpoint (moto's server on 127.0.0.1) and the mini web's images served on
loopback. Each worker has its own work directory, the driver runs in an empty folder of its own,
and nothing the stages write is on a local disk: the final shards in the bucket must equal a
local run's (same uids, same stats at every stage)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.e2e.cluster import SparkCluster, spark_env, tail
from vlcurate import miniweb

REPO = Path(__file__).resolve().parents[2]
FOLDERS = ("extract", "candidates", "shards", "scores", "final")
DOWNLOAD = "--timeout 2 --processes 1 --threads 16 --samples-per-shard 20 --host-delay 0"
DOWNLOAD += " --host-concurrency 16"
# One image a batch: CPU CLIP gives the last bits of an embedding differently for another batch
# composition, and the download writes each shard in the order its images arrive.
SCORE = "--device cpu --workers 1 --batch-size 1 --watermark none"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.cluster,
    pytest.mark.skipif(shutil.which("java") is None, reason="java is not on PATH (Spark needs it)"),
]


def _demo_without_ocr(folder: Path) -> str:
    """The demo recipe without its watermark cut: OCR on every image is minutes on 2 cores."""
    recipe = yaml.safe_load((REPO / "recipes" / "demo.yaml").read_text())
    del recipe["select"]["watermark_max"]
    path = folder / "demo-no-ocr.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


def _curate_run(recipe, inputs: str, output: str, master: str, port: int, cwd: Path, env, spark):
    argv = [str(Path(sys.executable).parent / "curate"), "run", recipe, "--input", inputs]
    argv += ["--output", output, "--master", master, "--no-progress"]
    argv += ["--allow-private-network", f"127.0.0.1:{port}"]
    download, score = DOWNLOAD, SCORE
    if spark:  # the shards as Spark tasks too, on the workers
        download, score = f"{download} --distributor pyspark", f"{score} --distributor pyspark"
    argv += ["--download-args", download, "--score-args", score]
    log = cwd / "run.log"
    with open(log, "wb") as f:
        proc = subprocess.run(argv, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT)
    assert proc.returncode == 0, f"curate run ({master}) failed\n{tail(log, 80)}"


def _outcome(root: str) -> dict:
    """Every stage's counts and the final selection's uids, read through fsspec."""
    import fsspec

    from vlcurate.pipeline import storage

    got = {}
    for folder in FOLDERS:
        stats = json.loads(storage.read_text(storage.join(root, folder, "stats.json")))
        assert stats["in"] == stats["kept"] + sum(stats["dropped"].values()), folder
        got[folder] = (stats["in"], stats["kept"], stats["dropped"])
    with fsspec.open(storage.join(root, "final", "uids.npy"), "rb") as f:
        got["uids"] = sorted(np.load(f, allow_pickle=False).tolist())
    manifest = json.loads(storage.read_text(storage.join(root, "final", "manifest.json")))
    got["final_samples"] = [s["samples"] for s in manifest["shards"]]
    return got


def test_demo_road_on_a_two_worker_cluster_with_s3(s3, miniweb_clip, tmp_path):
    import fsspec

    port = miniweb.free_port()
    web = tmp_path / "web"
    miniweb.build(web, seed=2, port=port, n_shapes=30)
    crawl = s3.url("crawl", miniweb.WARC_FILE)
    fsspec.filesystem("s3").put(str(web / miniweb.WARC_FILE), crawl.removeprefix("s3://"))
    env = spark_env(s3.env())
    (tmp_path / "cluster-home").mkdir()
    cluster = SparkCluster(tmp_path / "cluster-home", workers=2, cores=1, env=s3.env())
    driver, local = tmp_path / "driver", tmp_path / "local"
    driver.mkdir(), local.mkdir()
    out = s3.prefix("cluster-run")  # the session's bucket (tests/conftest.py: s3)
    recipe = _demo_without_ocr(tmp_path)
    with miniweb.serve(web, port=port, slow_seconds=6):
        try:
            cluster.start()
            _curate_run(recipe, crawl, out, cluster.url, port, driver, env, spark=True)
            ran_on = [list(w.work_dir.glob("app-*")) for w in cluster.workers]
        finally:
            cluster.stop()
        warc = str(web / miniweb.WARC_FILE)
        _curate_run(recipe, warc, str(local / "out"), "local[2]", port, local, env, spark=False)

    assert all(ran_on), f"a worker ran no executor: {ran_on}"
    assert list(driver.iterdir()) == [driver / "run.log"], "the cluster run wrote to local disk"
    on_cluster, in_process = _outcome(out), _outcome(str(local / "out"))
    assert on_cluster == in_process
    assert on_cluster["uids"] and sum(on_cluster["final_samples"]) == len(on_cluster["uids"])
    written = fsspec.filesystem("s3").find(out.removeprefix("s3://"))
    assert not [k for k in written if ".tmp-" in k or "/_partial/" in k], "partial objects left"
