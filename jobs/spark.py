"""SparkSession for entry points, and a progress bar fed by Spark's status tracker.

Library code never creates a session (see ``pipeline/``); only ``jobs/`` does, and it reuses an
active one, so the same job runs under ``spark-submit`` on a cluster and embedded in ``curate``.
"""

import os
import sys
import threading
from contextlib import contextmanager


def session(
    app_name: str,
    master: str | None = None,
    conf: dict | None = None,
    console_progress: bool = False,
):
    """Return the active SparkSession, or build one. ``master=None`` keeps what ``spark-submit``
    chose; ``curate`` passes ``local[*]``. ``console_progress``: Spark's own stage progress bar
    (for SQL jobs, whose task counts are not known in advance). ``conf`` wins over defaults."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    # Executors run this interpreter (the project's); local mode binds to loopback only.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    settings = {
        "spark.ui.showConsoleProgress": str(console_progress).lower(),
        "spark.ui.enabled": "false",
        "spark.python.worker.reuse": "true",
        "spark.python.daemon.module": "vlcurate.jobs.spark_daemon",  # workers forked warm
    }
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    if master and master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        settings["spark.driver.host"] = "127.0.0.1"  # and 200 shuffle partitions is for clusters
        settings["spark.sql.shuffle.partitions"] = str(4 * (os.cpu_count() or 2))
        # The JVM shares these cores with the workers: C1 only (C2 took 1/4 of short jobs' CPU).
        settings["spark.driver.extraJavaOptions"] = "-XX:TieredStopAtLevel=1"
    for key, value in {**settings, **(conf or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


@contextmanager
def progress(spark, total: int, desc: str, unit: str = "file", enabled: bool = True):
    """Show a tqdm bar of finished tasks while the block runs a Spark job of ``total`` tasks."""
    if not enabled or total == 0:
        yield
        return
    from tqdm import tqdm

    tracker = spark.sparkContext.statusTracker()
    stop = threading.Event()
    bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)

    def poll():
        seen_stages = set()
        while not stop.wait(0.5):
            seen_stages.update(tracker.getActiveStageIds())
            done = 0
            for stage_id in seen_stages:
                info = tracker.getStageInfo(stage_id)
                if info is not None:
                    done += info.numCompletedTasks
            bar.update(max(0, min(done, total) - bar.n))

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield
        bar.update(total - bar.n)
    finally:
        stop.set()
        thread.join(timeout=2)
        bar.close()


def _task_device(default: str) -> str:
    """The GPU Spark gave this task (``spark.task.resource.gpu.amount=1``), else ``default``."""
    from pyspark import TaskContext

    context = TaskContext.get()
    gpus = context.resources().get("gpu") if context is not None else None
    return f"cuda:{gpus.addresses[0]}" if gpus else default


class SparkExecutor:
    """One Spark task per unit, on the active session or one built for ``master``: each task
    checks, processes and marks its unit where it runs (so the output must be a location every
    executor can write), on the GPU Spark assigned to it or on ``device``."""

    def __init__(
        self,
        master: str | None = None,
        conf: dict | None = None,
        progress: bool = True,
        device: str = "cpu",
        app: str = "curate",
    ):
        self.master, self.conf, self.progress = master, conf, progress
        self.device, self.app = device, app

    def run(self, stage, units) -> list[dict]:
        from vlcurate.pipeline.stage import run_units

        spark = session(f"{self.app}-{stage.name}", self.master, self.conf)
        device = self.device
        rdd = spark.sparkContext.parallelize(units, len(units))
        with progress(spark, len(units), stage.name, unit="unit", enabled=self.progress):
            return rdd.flatMap(
                lambda unit: list(run_units(stage, [unit], _task_device(device)))
            ).collect()
