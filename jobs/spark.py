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
    (or ``spark.master`` in the environment) chose; ``curate`` passes ``local[*]``.
    ``console_progress`` turns on Spark's own stage progress bar (for SQL jobs, whose task
    counts are not known in advance)."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    # Executors must run this interpreter (the one with the project installed), and local mode
    # must not bind to a public interface.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
        if master.startswith("local"):
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            builder = builder.config("spark.driver.host", "127.0.0.1")
            # 200 shuffle partitions is a cluster default; on one machine it is pure overhead.
            builder = builder.config("spark.sql.shuffle.partitions", str(4 * (os.cpu_count() or 2)))
    builder = builder.config("spark.ui.showConsoleProgress", str(console_progress).lower())
    builder = builder.config("spark.ui.enabled", "false")
    builder = builder.config("spark.python.worker.reuse", "true")
    for key, value in (conf or {}).items():
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
