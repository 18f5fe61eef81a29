import os
import sys
from pathlib import Path

import pytest

# Set before pyspark or any model library is imported: offline, loopback only, this venv.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)

DATA = Path(__file__).parent / "data"
WARCS = DATA / "warc"


@pytest.fixture(scope="session")
def spark():
    """One local[2] Spark session for the whole test session."""
    from jobs.spark import session

    s = session("curate-tests", "local[2]", {"spark.sql.shuffle.partitions": "4"})
    yield s
    s.stop()


@pytest.fixture(scope="session")
def warcs() -> Path:
    return WARCS


@pytest.fixture(scope="session")
def miniweb_clip(tmp_path_factory) -> dict:
    """The mini web's CLIP (tiny-clip trained on mini-web scenes, about two minutes on the CPU),
    shared by every test that needs a CLIP that works: ``final`` (weights), ``model`` (config
    path), ``train_shards`` and ``heldout_shards`` (brace patterns)."""
    from pipeline.train.miniweb_clip import train_miniweb_clip

    return train_miniweb_clip(tmp_path_factory.mktemp("miniweb-clip"), progress=False)
