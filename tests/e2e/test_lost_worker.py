"""A worker lost mid-stage: on a standalone cluster of two one-core workers, with the candidates
and every output in an S3 endpoint (moto's server on 127.0.0.1), the download job's shards are
fetched by Spark tasks; one worker's JVM is killed (SIGKILL, by its PID) while one of its tasks
is fetching a shard's images. Spark runs that task again on the other worker, and the stage ends
as an undisturbed run does: every shard once, no duplicate sample, nothing partial or unfinished
left in the bucket, the same stats.

The kill is timed by what the victim's processes do: a TCP connection from one of its Python
workers to the mini web's port is a request of a shard in flight (one request a connection,
``Connection: close``; the server holds each a quarter of a second, so none is missed), so the
task is mid-unit, its shard not yet uploaded; the victim's executor log then shows
that task started and never finished, and the survivor's shows its next attempt finished."""

import hashlib
import json
import re
import shutil
import tarfile
import time
from pathlib import Path

import psutil
import pytest

from tests.e2e.cluster import SparkCluster, tail, wait
from vlcurate.miniweb.server import MiniWebServer

REPO = Path(__file__).resolve().parents[2]
DOWNLOAD_FLAGS = "--timeout 2 --threads 4 --samples-per-shard 6 --image-size 64 --host-delay 0"
DOWNLOAD_FLAGS += " --host-concurrency 16 --retries 0"
HOLD_S = 0.25  # the mini web holds each request this long: a shard's fetches are seen
RUNNING = re.compile(r"Running task (\d+)\.(\d+) in stage \S+ \(TID (\d+)\)")
FINISHED = re.compile(r"Finished task (\d+)\.(\d+) in stage \S+ \(TID (\d+)\)")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.cluster,
    pytest.mark.skipif(shutil.which("java") is None, reason="java is not on PATH (Spark needs it)"),
]


@pytest.fixture
def cluster(s3, tmp_path_factory):
    home = tmp_path_factory.mktemp("lost-worker-cluster")
    cluster = SparkCluster(home, workers=2, cores=1, env=s3.env())
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture
def miniweb_candidates(spark, s3, tmp_path):
    """The mini web extracted and filtered (every pair kept) into the bucket:
    ``(root, port, serve)``, the candidates in ``root/cands``."""
    from tests.pairs import KEEP_ALL
    from vlcurate import miniweb
    from vlcurate.jobs import extract as extract_job
    from vlcurate.jobs import filter as filter_job
    from vlcurate.pipeline.extract.stage import ExtractConfig
    from vlcurate.pipeline.recipe import parse_recipe

    port = miniweb.free_port()
    web = tmp_path / "web"
    miniweb.build(web, seed=3, port=port, n_shapes=40)
    root = s3.prefix("lost-worker")
    warc = [str(web / miniweb.WARC_FILE)]
    extract_job.run(warc, f"{root}/extract", ExtractConfig(), progress=False)
    filter_job.run(f"{root}/extract", parse_recipe(KEEP_ALL), f"{root}/cands", progress=False)
    return root, port, lambda: _HoldingServer(web, "127.0.0.1", port, 3, False).start()


class _HoldingServer(MiniWebServer):
    """The mini web's server, holding each request :data:`HOLD_S` before it answers it: every
    request of a shard is in flight at least that long, for the test to see (well under the
    2 s timeout, so the answers are the same)."""

    def finish_request(self, request, client_address) -> None:
        if not self.stopping.wait(HOLD_S):
            super().finish_request(request, client_address)


def _s3fs():
    import fsspec

    return fsspec.filesystem("s3", use_listings_cache=False, skip_instance_cache=True)


def _python_workers(worker) -> list[psutil.Process]:
    """The processes under this worker that are not JVMs: its executor's Python daemon and the
    Python workers it forked, which run the tasks."""
    try:
        tree = psutil.Process(worker.proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for proc in tree:
        try:
            if proc.name() != "java":
                found.append(proc)
        except psutil.NoSuchProcess:
            continue
    return found


def _fetching(procs: list[psutil.Process], port: int) -> bool:
    """Whether one of ``procs`` has a TCP connection to the mini web's port open."""
    for proc in procs:
        try:
            if any(c.raddr and c.raddr.port == port for c in proc.net_connections("tcp")):
                return True
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return False


def _kill_mid_shard(cluster, job, port: int, timeout: float = 180) -> list[psutil.Process]:
    """SIGKILL worker 1's JVM as soon as one of its tasks is fetching an image; returns the
    processes it had under it then."""
    victim = cluster.workers[1]
    deadline = time.monotonic() + timeout
    procs, listed = [], 0.0
    while job.poll() is None and time.monotonic() < deadline:
        if time.monotonic() - listed > 0.2:  # new Python workers are forked per task, at most
            procs, listed = _python_workers(victim), time.monotonic()
        if _fetching(procs, port):
            cluster.kill_worker(victim)
            return procs
        time.sleep(0.002)
    raise AssertionError(f"worker 1 never fetched an image while the job ran\n{cluster.logs()}")


def _task_lines(worker, pattern: re.Pattern) -> set[tuple[int, int, int]]:
    """``(partition, attempt, TID)`` of the tasks that the executor of the worker's latest
    application logged as ``pattern`` (running or finished)."""
    apps = sorted(worker.work_dir.glob("app-*"))
    assert apps, f"worker {worker.index} ran no executor"
    text = "".join(p.read_text(errors="replace") for p in apps[-1].glob("*/stderr"))
    return {tuple(map(int, m.groups())) for m in pattern.finditer(text)}


def _assert_lost_mid_task(cluster) -> None:
    """The victim's executor started a task it never finished, and that partition's next
    attempt finished on the other worker."""
    victim, survivor = cluster.workers[1], cluster.workers[0]
    finished = {tid for _, _, tid in _task_lines(victim, FINISHED)}
    cut = [(p, tid) for p, _, tid in _task_lines(victim, RUNNING) if tid not in finished]
    assert len(cut) == 1, f"tasks the lost worker left unfinished: {cut}\n{cluster.logs()}"
    [(partition, tid)] = cut
    redone = [(p, a, t) for p, a, t in _task_lines(survivor, FINISHED) if p == partition]
    assert redone and all(t > tid for _, _, t in redone), (partition, tid, redone)


def _wait_gone(procs: list[psutil.Process], timeout: float = 60) -> None:
    """The lost worker's processes all end (its executor without its worker, the Python
    workers without their executor): none goes on writing beside the tasks run again."""
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    assert not alive, f"processes of the lost worker still running: {alive}"


def _shards(fs, url: str) -> dict:
    """Shard name -> (its tar's members and their bytes' digests, its sidecar's rows), read
    from the bucket; a truncated tar or parquet fails here."""
    import pyarrow.parquet as pq

    found = {}
    for tar in sorted(fs.glob(f"{url}/*.tar")):
        with fs.open(tar, "rb") as f, tarfile.open(fileobj=f) as t:
            members = {m.name: hashlib.sha256(t.extractfile(m).read()).hexdigest() for m in t}
        with fs.open(tar.removesuffix(".tar") + ".parquet", "rb") as f:
            sidecar = pq.read_table(f, columns=["key", "url", "status"]).to_pylist()
        rows = sorted(((r["key"], r["url"], r["status"]) for r in sidecar), key=str)
        found[tar.rsplit("/", 1)[1]] = (members, rows)
    return found


def _objects(fs, url: str) -> list[str]:
    """The keys under ``url``, relative to it."""
    prefix = url.removeprefix("s3://").rstrip("/") + "/"
    return sorted(k.removeprefix(prefix) for k in fs.find(prefix))


def _unfinished_uploads(fs, url: str) -> list[str]:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    answer = fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=key.rstrip("/") + "/")
    return [u["Key"] for u in answer.get("Uploads", [])]


def _download_argv(candidates: str, output: str, port: int) -> list[str]:
    argv = [str(REPO / "jobs" / "download.py"), "--input", candidates, "--output", output]
    argv += ["--allow-private-network", f"127.0.0.1:{port}", "--distributor", "pyspark"]
    return argv + DOWNLOAD_FLAGS.split()


def _run_twice(cluster, root: str, port: int, serve, driver: Path) -> None:
    """The download from ``root/cands`` into ``root/calm`` undisturbed, then into
    ``root/lost`` with worker 1 killed mid-shard."""
    cands = f"{root}/cands"
    with serve():
        calm_log = driver / "calm.log"
        job = cluster.submit(_download_argv(cands, f"{root}/calm", port), driver, calm_log)
        wait(job, calm_log, cluster, 300)
        lost_log = driver / "lost.log"
        job = cluster.submit(_download_argv(cands, f"{root}/lost", port), driver, lost_log)
        victims = _kill_mid_shard(cluster, job, port)
        _wait_gone(victims)
        wait(job, lost_log, cluster, 300)
    assert "Lost executor" in lost_log.read_text(errors="replace"), tail(lost_log, 80)


def test_a_lost_worker_changes_nothing(cluster, miniweb_candidates, tmp_path):
    root, port, serve = miniweb_candidates
    driver = tmp_path / "driver"  # the driver's working folder: only its logs land there
    driver.mkdir()
    _run_twice(cluster, root, port, serve, driver)
    _assert_lost_mid_task(cluster)
    assert sorted(p.name for p in driver.iterdir()) == ["calm.log", "lost.log"]

    fs = _s3fs()
    calm, lost = f"{root}/calm", f"{root}/lost"
    calm_stats = json.loads(fs.cat_file(f"{calm}/stats.json"))
    lost_stats = json.loads(fs.cat_file(f"{lost}/stats.json"))
    for key in ("in", "kept", "dropped", "units", "shards", "failures_by_host", "unsafe_urls"):
        assert lost_stats[key] == calm_stats[key], key
    assert lost_stats["in"] == lost_stats["kept"] + sum(lost_stats["dropped"].values())
    assert lost_stats["units"]["kept"] == lost_stats["units"]["in"] > 2
    shards = _shards(fs, lost)
    assert shards == _shards(fs, calm) and len(shards) == lost_stats["shards"]
    assert _objects(fs, lost) == _objects(fs, calm)  # the same shards, sidecars, done markers
    left = [k for k in _objects(fs, root) if ".tmp-" in k or "_partial/" in k]
    assert left == [], f"partial objects left in the bucket: {left}"
    assert _unfinished_uploads(fs, root) == []
    keys = [m for members, _ in shards.values() for m in members if m.endswith(".jpg")]
    assert len(keys) == len(set(keys)) == lost_stats["kept"]
    rows = [row[0] for _, sidecar in shards.values() for row in sidecar]
    assert len(rows) == len(set(rows))
