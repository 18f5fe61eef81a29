"""The extract job on a real Spark standalone cluster (one master, one worker, on 127.0.0.1).

Runs ``spark-submit --master spark://... jobs/extract.py`` exactly as a data engineer would, and
checks its output against the same extraction done in-process (what local mode computes).
"""

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
JOB = REPO / "jobs" / "extract.py"
WARC_DIR = REPO / "tests" / "data" / "warc"
START_TIMEOUT_S = 90
SUBMIT_TIMEOUT_S = 300

pytestmark = [
    pytest.mark.slow,
    pytest.mark.cluster,
    pytest.mark.skipif(shutil.which("java") is None, reason="java is not on PATH (Spark needs it)"),
]


def _spark_home() -> Path:
    """pyspark's package folder: the wheel ships bin/spark-class, bin/spark-submit and jars/."""
    spec = importlib.util.find_spec("pyspark")
    assert spec is not None and spec.submodule_search_locations, "pyspark is not installed"
    return Path(spec.submodule_search_locations[0])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spark_env() -> dict:
    env = dict(os.environ)
    env.update(
        SPARK_HOME=str(_spark_home()),
        SPARK_LOCAL_IP="127.0.0.1",
        PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable,
    )
    env.pop("SPARK_CONF_DIR", None)
    env.pop("PYTHONPATH", None)  # the venv's interpreter finds jobs/pipeline/schemas itself
    return env


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    return "\n".join(text.splitlines()[-lines:])


def _master_json(webui_port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{webui_port}/json/", timeout=2) as r:
            return json.loads(r.read())
    except (OSError, ValueError):
        return None


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the process group we started (the JVM and anything it forked), then SIGKILL."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    try:  # the worker's executors share its group and may outlive it
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if proc.poll() is None:
        proc.wait(timeout=10)


class SparkCluster:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.home = _spark_home()
        self.env = _spark_env()
        self.port = _free_port()
        self.webui_port = _free_port()
        self.worker_webui_port = _free_port()
        self.url = f"spark://127.0.0.1:{self.port}"
        self.work_dir = tmp / "worker-work"
        self.work_dir.mkdir()
        self.master_log = tmp / "master.log"
        self.worker_log = tmp / "worker.log"
        self.procs: list[subprocess.Popen] = []

    def _spawn(self, args: list[str], log: Path) -> subprocess.Popen:
        with open(log, "wb") as f:
            proc = subprocess.Popen(
                [str(self.home / "bin" / "spark-class"), *args],
                env=self.env,
                cwd=self.tmp,
                stdin=subprocess.DEVNULL,
                stdout=f,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so teardown gets all of it
            )
        self.procs.append(proc)
        return proc

    def logs(self) -> str:
        return (
            f"--- master log ({self.master_log}) ---\n{_tail(self.master_log)}\n"
            f"--- worker log ({self.worker_log}) ---\n{_tail(self.worker_log)}"
        )

    def start(self) -> None:
        master = self._spawn(
            [
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--webui-port",
                str(self.webui_port),
            ],
            self.master_log,
        )
        worker = self._spawn(
            [
                "org.apache.spark.deploy.worker.Worker",
                self.url,
                "--host",
                "127.0.0.1",
                "--cores",
                "2",
                "--memory",
                "2g",
                "--webui-port",
                str(self.worker_webui_port),
                "--work-dir",
                str(self.work_dir),
            ],
            self.worker_log,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for name, proc in (("master", master), ("worker", worker)):
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"Spark {name} exited with code {proc.returncode} while starting\n"
                        + self.logs()
                    )
            state = self.state()
            if state and state.get("aliveworkers", 0) >= 1:
                return
            time.sleep(0.5)
        raise RuntimeError(
            f"no Spark worker registered with {self.url} within {START_TIMEOUT_S} s "
            f"(master JSON: {self.state()})\n" + self.logs()
        )

    def state(self) -> dict | None:
        return _master_json(self.webui_port)

    def stop(self) -> None:
        for proc in reversed(self.procs):  # worker first, so it stops its executors
            _stop(proc)


@pytest.fixture(scope="module")
def standalone_cluster(tmp_path_factory):
    """A standalone master with one 2-core worker on 127.0.0.1, torn down after the module."""
    cluster = SparkCluster(tmp_path_factory.mktemp("spark-cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def spark_cluster(standalone_cluster):
    """The master URL (``spark://127.0.0.1:PORT``) of the module's standalone cluster."""
    return standalone_cluster.url


def _inputs() -> list[Path]:
    files = sorted(p for p in WARC_DIR.iterdir() if ".warc" in p.name)
    assert files, f"no WARC fixtures in {WARC_DIR}"
    return files


def _local_expectation(inputs: list[Path], out: Path) -> dict:
    from vlcurate.pipeline.extract.stage import extract_file_to

    totals = dict.fromkeys(("in", "kept", "pairs", "docs"), 0)
    for path in inputs:
        result = extract_file_to(str(path), str(out))
        for key in totals:
            totals[key] += result.get(key, 0)
    return totals


def _submit(cluster, tmp_path: Path, job: Path, *args: str) -> Path:
    """``spark-submit --master spark://... JOB ARGS``, as a data engineer runs it; returns the
    path of its log."""
    cmd = [str(cluster.home / "bin" / "spark-submit"), "--master", cluster.url, str(job), *args]
    log = tmp_path / f"spark-submit-{job.stem}.log"
    with open(log, "wb") as f:
        try:
            proc = subprocess.run(
                cmd,
                env=cluster.env,
                cwd=tmp_path,
                stdin=subprocess.DEVNULL,
                stdout=f,
                stderr=subprocess.STDOUT,
                timeout=SUBMIT_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"spark-submit ran over {SUBMIT_TIMEOUT_S} s\n{_tail(log)}\n{cluster.logs()}"
            )
    assert proc.returncode == 0, (
        f"spark-submit exited with {proc.returncode}\n--- spark-submit log ---\n{_tail(log, 80)}\n"
        + cluster.logs()
    )
    return log


def test_extract_job_on_standalone_cluster(spark_cluster, standalone_cluster, tmp_path):
    cluster = standalone_cluster
    inputs = _inputs()
    out = tmp_path / "out"
    expected = _local_expectation(inputs, tmp_path / "local")

    log = _submit(
        cluster, tmp_path, JOB, "--input", *map(str, inputs), "--output", str(out), "--no-progress"
    )

    stats_file = out / "stats.json"
    assert stats_file.is_file(), f"no {stats_file}\n{_tail(log)}"
    stats = json.loads(stats_file.read_text())
    assert stats["in"] == stats["kept"] + sum(stats["dropped"].values()), stats
    assert stats["inputs"] == len(inputs)
    assert stats["units_resumed"] == 0
    got = {key: stats.get(key, 0) for key in expected}
    assert got == expected, f"cluster run {got} != in-process run {expected}"
    assert expected["docs"] > 0 and expected["pairs"] > 0, "fixtures should yield docs and pairs"

    import pyarrow.parquet as pq

    for sub in ("pairs", "docs"):
        files = sorted((out / sub).glob("*.parquet"))
        assert len(files) == len(inputs), f"{sub}/: {len(files)} files for {len(inputs)} inputs"
        rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        assert rows == stats[sub], f"{sub}/ has {rows} rows, stats.json says {stats[sub]}"

    # It ran on the cluster, not in a local-mode driver: the worker launched an executor for the
    # application, and the master lists the application as completed.
    app_dirs = [p.name for p in cluster.work_dir.glob("app-*")]
    assert app_dirs, f"the worker launched no executor (work dir {cluster.work_dir} is empty)"
    deadline = time.monotonic() + 30
    while True:
        state = cluster.state() or {}
        completed = [app["id"] for app in state.get("completedapps", [])]
        if set(app_dirs) & set(completed) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert set(app_dirs) & set(completed), (
        f"master lists completed apps {completed}, worker ran {app_dirs}\n{cluster.logs()}"
    )


def test_filter_job_on_standalone_cluster(standalone_cluster, spark, tmp_path):
    """The cc3m recipe (fastText and spaCy on the executors) gives what local mode gives."""
    from vlcurate.jobs import filter as filter_job
    from vlcurate.pipeline.extract.stage import extract_file_to
    from vlcurate.pipeline.recipe import load_recipe

    extracted = tmp_path / "extracted"
    for path in _inputs():
        extract_file_to(str(path), str(extracted))
    out = tmp_path / "cluster"
    _submit(
        standalone_cluster,
        tmp_path,
        REPO / "jobs" / "filter.py",
        "--input",
        str(extracted),
        "--recipe",
        "cc3m",
        "--output",
        str(out),
        "--dropped",
    )
    on_cluster = json.loads((out / "stats.json").read_text())
    local = filter_job.run(str(extracted), load_recipe("cc3m"), str(tmp_path / "local"))
    assert on_cluster["in"] == on_cluster["kept"] + sum(on_cluster["dropped"].values())
    assert (on_cluster["kept"], on_cluster["dropped"]) == (local["kept"], local["dropped"])
    assert on_cluster["in"] > 0 and 0 < on_cluster["kept"] < on_cluster["in"]
