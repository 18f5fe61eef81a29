"""A worker lost mid-stage: on a standalone cluster of two one-core workers, the download job's
shards are fetched by Spark tasks; one worker's JVM is killed (SIGKILL, by its PID) while one of
its tasks is writing a shard. Spark runs that task again on the other worker, and the stage ends
as an undisturbed run does: every shard once, no duplicate sample, nothing partial left, the
same stats."""

import json
import shutil
import time
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest

from tests.e2e.cluster import SparkCluster, tail, wait

REPO = Path(__file__).resolve().parents[2]
DOWNLOAD_FLAGS = "--timeout 2 --threads 4 --samples-per-shard 6 --image-size 64 --host-delay 0"
DOWNLOAD_FLAGS += " --host-concurrency 16 --retries 0"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.cluster,
    pytest.mark.skipif(shutil.which("java") is None, reason="java is not on PATH (Spark needs it)"),
]


@pytest.fixture
def cluster(tmp_path_factory):
    cluster = SparkCluster(tmp_path_factory.mktemp("lost-worker-cluster"), workers=2, cores=1)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture
def miniweb_candidates(spark, tmp_path):
    """The mini web extracted and filtered (every pair kept): ``(candidates, port, serve)``."""
    from functools import partial

    from tests.pairs import KEEP_ALL
    from vlcurate import miniweb
    from vlcurate.jobs import extract as extract_job
    from vlcurate.jobs import filter as filter_job
    from vlcurate.pipeline.extract.stage import ExtractConfig
    from vlcurate.pipeline.recipe import parse_recipe

    port = miniweb.free_port()
    web = tmp_path / "web"
    miniweb.build(web, seed=3, port=port, n_shapes=40)
    warc = [str(web / miniweb.WARC_FILE)]
    extract_job.run(warc, str(tmp_path / "extract"), ExtractConfig(), progress=False)
    filter_job.run(str(tmp_path / "extract"), parse_recipe(KEEP_ALL), str(tmp_path / "cands"))
    return tmp_path / "cands", port, partial(miniweb.serve, web, port=port, slow_seconds=3)


def _writing_a_shard(worker, partial: Path) -> bool:
    """Whether a process under this worker (its executor, the executor's Python workers) has
    a shard of ``partial`` open: a task of the stage is running there, mid-shard."""
    try:
        procs = [psutil.Process(worker.proc.pid), *psutil.Process(worker.proc.pid).children(True)]
    except psutil.NoSuchProcess:
        return False
    for proc in procs:
        try:
            if any(f.path.startswith(str(partial)) for f in proc.open_files()):
                return True
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return False


def _kill_mid_shard(cluster, job, partial: Path, timeout: float = 120) -> None:
    victim = cluster.workers[1]
    deadline = time.monotonic() + timeout
    while job.poll() is None and time.monotonic() < deadline:
        if _writing_a_shard(victim, partial):
            cluster.kill_worker(victim)
            return
        time.sleep(0.02)
    raise AssertionError(f"worker 1 never wrote a shard while the job ran\n{cluster.logs()}")


def _shards(folder: Path) -> dict:
    """Shard name -> (its tar's member names, its sidecar's rows by key)."""
    import tarfile

    found = {}
    for tar in sorted(folder.glob("*.tar")):
        with tarfile.open(tar) as t:
            members = sorted(t.getnames())
        sidecar = pq.read_table(tar.with_suffix(".parquet")).select(["key", "url", "status"])
        found[tar.stem] = (members, sorted(map(tuple, sidecar.to_pylist()), key=str))
    return found


def _download_argv(candidates: Path, output: Path, port: int) -> list[str]:
    argv = [str(REPO / "jobs" / "download.py"), "--input", str(candidates), "--output"]
    argv += [str(output), "--allow-private-network", f"127.0.0.1:{port}"]
    return argv + DOWNLOAD_FLAGS.split()


def test_a_lost_worker_changes_nothing(cluster, miniweb_candidates, tmp_path):
    candidates, port, serve = miniweb_candidates
    with serve():
        calm_log, calm = tmp_path / "calm.log", tmp_path / "calm"
        argv = _download_argv(candidates, calm, port) + ["--distributor", "pyspark"]
        wait(cluster.submit(argv, tmp_path, calm_log), calm_log, cluster, 300)

        lost_log, lost = tmp_path / "lost.log", tmp_path / "lost"
        job = cluster.submit(
            _download_argv(candidates, lost, port) + ["--distributor", "pyspark"],
            tmp_path,
            lost_log,
        )
        _kill_mid_shard(cluster, job, lost / "_partial")
        wait(job, lost_log, cluster, 300)

    log = lost_log.read_text(errors="replace")
    assert "ExecutorLostFailure" in log or "Lost executor" in log, tail(lost_log, 80)
    calm_stats = json.loads((calm / "stats.json").read_text())
    lost_stats = json.loads((lost / "stats.json").read_text())
    for key in ("in", "kept", "dropped", "units"):
        assert lost_stats[key] == calm_stats[key], key
    assert lost_stats["in"] == lost_stats["kept"] + sum(lost_stats["dropped"].values())
    assert _shards(lost) == _shards(calm)
    assert sorted(p.name for p in (lost / "_done").iterdir()) == sorted(
        p.name for p in (calm / "_done").iterdir()
    )
    leftovers = [p for p in lost.rglob("*") if ".tmp-" in p.name or p.parent.name == "_partial"]
    assert leftovers == [], leftovers
    keys = [m for members, _ in _shards(lost).values() for m in members if m.endswith(".jpg")]
    assert len(keys) == len(set(keys)) == lost_stats["kept"]
