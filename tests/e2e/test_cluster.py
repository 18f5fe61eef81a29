"""Jobs on a real Spark standalone cluster (one master, two one-core workers, on 127.0.0.1).

Runs ``spark-submit --master spark://... jobs/extract.py`` exactly as a data engineer would, and
checks its output against the same extraction done in-process (what local mode computes).
"""

import json
import shutil
import time
from pathlib import Path

import pytest

from tests.e2e.cluster import SUBMIT_TIMEOUT_S, SparkCluster, tail, wait

REPO = Path(__file__).resolve().parents[2]
JOB = REPO / "jobs" / "extract.py"
WARC_DIR = REPO / "tests" / "data" / "warc"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.cluster,
    pytest.mark.skipif(shutil.which("java") is None, reason="java is not on PATH (Spark needs it)"),
]


@pytest.fixture(scope="module")
def standalone_cluster(tmp_path_factory):
    """A standalone master with two one-core workers on 127.0.0.1, torn down after the module."""
    cluster = SparkCluster(tmp_path_factory.mktemp("spark-cluster"), workers=2, cores=1)
    try:
        yield cluster.start()
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
    log = tmp_path / f"spark-submit-{job.stem}.log"
    wait(cluster.submit([str(job), *args], tmp_path, log), log, cluster, SUBMIT_TIMEOUT_S)
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
    assert stats_file.is_file(), f"no {stats_file}\n{tail(log)}"
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

    # It ran on the cluster, not in a local-mode driver: each worker launched an executor for
    # the application, and the master lists the application as completed.
    app_dirs = [{p.name for p in w.work_dir.glob("app-*")} for w in cluster.workers]
    assert all(app_dirs), f"a worker launched no executor: {app_dirs}\n{cluster.logs()}"
    (app,) = set.intersection(*app_dirs)
    deadline = time.monotonic() + 30
    while True:
        state = cluster.state() or {}
        completed = [a["id"] for a in state.get("completedapps", [])]
        if app in completed or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert app in completed, f"master lists completed apps {completed}, workers ran {app}"


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
