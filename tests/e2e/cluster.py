"""A Spark standalone cluster on 127.0.0.1 for tests: one master and N workers started from
pyspark's own ``spark-class``, each worker with its own work directory, each process in its own
process group (so a test can kill one worker by its PID, and teardown gets everything)."""

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

START_TIMEOUT_S = 90
SUBMIT_TIMEOUT_S = 600


def spark_home() -> Path:
    """pyspark's package folder: the wheel ships bin/spark-class, bin/spark-submit and jars/."""
    spec = importlib.util.find_spec("pyspark")
    assert spec is not None and spec.submodule_search_locations, "pyspark is not installed"
    return Path(spec.submodule_search_locations[0])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spark_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env.update(
        SPARK_HOME=str(spark_home()),
        SPARK_LOCAL_IP="127.0.0.1",
        PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable,
    )
    env.pop("SPARK_CONF_DIR", None)
    env.pop("PYTHONPATH", None)  # the venv's interpreter finds jobs/pipeline/schemas itself
    env.update(extra or {})
    return env


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    return "\n".join(text.splitlines()[-lines:])


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


class Worker:
    def __init__(self, tmp: Path, index: int):
        self.index = index
        self.work_dir = tmp / f"worker-{index}-work"
        self.work_dir.mkdir()
        self.log = tmp / f"worker-{index}.log"
        self.webui_port = free_port()
        self.proc: subprocess.Popen | None = None

    def executor_pids(self) -> list[int]:
        """PIDs of the executor JVMs this worker launched (children in its process group)."""
        if self.proc is None:
            return []
        found = subprocess.run(
            ["pgrep", "-g", str(self.proc.pid), "-f", "CoarseGrainedExecutorBackend"],
            capture_output=True,
            text=True,
        ).stdout.split()
        return [int(pid) for pid in found]


class SparkCluster:
    """``SparkCluster(tmp, workers=2, cores=1).start()``; ``url`` is the master's address."""

    def __init__(self, tmp: Path, workers: int = 2, cores: int = 1, memory: str = "2g", env=None):
        self.tmp = tmp
        self.home = spark_home()
        self.env = spark_env(env)
        self.port = free_port()
        self.webui_port = free_port()
        self.url = f"spark://127.0.0.1:{self.port}"
        self.cores, self.memory = cores, memory
        self.master_log = tmp / "master.log"
        self.workers = [Worker(tmp, i) for i in range(workers)]
        self.procs: list[subprocess.Popen] = []

    def _spawn(self, args: list[str], log: Path, cwd: Path) -> subprocess.Popen:
        with open(log, "ab") as f:
            proc = subprocess.Popen(
                [str(self.home / "bin" / "spark-class"), *args],
                env=self.env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=f,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so teardown gets all of it
            )
        self.procs.append(proc)
        return proc

    def logs(self) -> str:
        parts = [f"--- master log ({self.master_log}) ---\n{tail(self.master_log)}"]
        for w in self.workers:
            parts.append(f"--- worker {w.index} log ({w.log}) ---\n{tail(w.log)}")
        return "\n".join(parts)

    def start(self) -> "SparkCluster":
        args = ["--host", "127.0.0.1", "--port", str(self.port), "--webui-port"]
        master = org_spark("master.Master", [*args, str(self.webui_port)])
        self.master = self._spawn(master, self.master_log, self.tmp)
        for worker in self.workers:
            self.start_worker(worker)
        self.wait_for_workers(len(self.workers))
        return self

    def start_worker(self, worker: Worker) -> None:
        args = [self.url, "--host", "127.0.0.1", "--cores", str(self.cores)]
        args += ["--memory", self.memory, "--webui-port", str(worker.webui_port)]
        args += ["--work-dir", str(worker.work_dir)]
        worker.proc = self._spawn(org_spark("worker.Worker", args), worker.log, worker.work_dir)

    def wait_for_workers(self, alive: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for name, proc in [("master", self.master)] + [
                (f"worker {w.index}", w.proc) for w in self.workers
            ]:
                if proc is not None and proc.poll() is not None and proc.returncode != -9:
                    raise RuntimeError(
                        f"Spark {name} exited with code {proc.returncode}\n" + self.logs()
                    )
            state = self.state()
            if state and state.get("aliveworkers", 0) >= alive:
                return
            time.sleep(0.5)
        raise RuntimeError(
            f"{alive} Spark workers did not register with {self.url} within {START_TIMEOUT_S} s "
            f"(master JSON: {self.state()})\n" + self.logs()
        )

    def kill_worker(self, worker: Worker) -> None:
        """SIGKILL the worker's JVM by its PID, as a machine lost mid-stage; its executors, left
        without their worker, exit on their own (Spark's WorkerWatcher)."""
        os.kill(worker.proc.pid, signal.SIGKILL)
        worker.proc.wait(timeout=10)

    def state(self) -> dict | None:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.webui_port}/json/", timeout=2
            ) as r:
                return json.loads(r.read())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        for proc in reversed(self.procs):  # workers first, so they stop their executors
            _stop(proc)

    def submit(self, args: list[str], cwd: Path, log: Path, timeout: int = SUBMIT_TIMEOUT_S):
        """``spark-submit --master spark://... ARGS`` as a data engineer runs it, in the
        background: returns the process (its output goes to ``log``)."""
        with open(log, "wb") as f:
            return subprocess.Popen(
                [str(self.home / "bin" / "spark-submit"), "--master", self.url, *args],
                env=self.env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=f,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )


def org_spark(cls: str, args: list[str]) -> list[str]:
    return [f"org.apache.spark.deploy.{cls}", *args]


def wait(proc: subprocess.Popen, log: Path, cluster: SparkCluster, timeout: int) -> None:
    """Wait for a submitted job; fail with its log and the cluster's if it fails or hangs."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(proc)
        message = f"job ran over {timeout} s\n{tail(log, 80)}\n{cluster.logs()}"
        raise AssertionError(message) from None
    assert proc.returncode == 0, (
        f"job exited with {proc.returncode}\n--- its log ---\n{tail(log, 80)}\n" + cluster.logs()
    )
