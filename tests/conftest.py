import os
import sys
from pathlib import Path

import pytest

# Set before pyspark or any model library is imported: offline, loopback only, this venv.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)

# The session's S3 endpoint (the s3 fixture) has its address and test credentials in the
# environment from the start: Spark's Python workers are forked once, with the environment the
# first session had, so they must see it before any test starts Spark.
from tests.s3 import MotoS3, free_port  # noqa: E402

S3_SERVER = MotoS3(port=free_port())
os.environ.update(S3_SERVER.env())

DATA = Path(__file__).parent / "data"
WARCS = DATA / "warc"


@pytest.fixture(scope="session")
def spark():
    """One local[2] Spark session for the whole test session."""
    from vlcurate.jobs.spark import session

    s = session("curate-tests", "local[2]", {"spark.sql.shuffle.partitions": "4"})
    yield s
    s.stop()


@pytest.fixture(scope="session")
def warcs() -> Path:
    return WARCS


@pytest.fixture(scope="session", autouse=True)
def curate_cache(tmp_path_factory):
    """A cache of the session's own, so no test finds (or leaves) the user's trained models;
    ``CURATE_TEST_CACHE`` names one to share between test sessions (the mini web's CLIP is then
    trained once, not once per session)."""
    shared = os.environ.get("CURATE_TEST_CACHE")
    os.environ["CURATE_CACHE"] = shared or str(tmp_path_factory.mktemp("curate-cache"))


@pytest.fixture(scope="session")
def miniweb_clip(curate_cache) -> dict:
    """The mini web's CLIP (tiny-clip trained on mini-web scenes, about two minutes on the CPU)
    in the session's cache, where ``--pretrained miniweb`` finds it; shared by every test that
    needs a CLIP that works: ``final`` (weights), ``model`` (config name), ``train_shards`` and
    ``heldout_shards`` (brace patterns)."""
    from vlcurate.miniweb.clip import train_miniweb_clip

    return train_miniweb_clip(progress=False)


@pytest.fixture(scope="session")
def scored_miniweb(spark, miniweb_clip, tmp_path_factory):
    """The mini web (40 shape scenes) extracted, downloaded at 128 px over 127.0.0.1 and scored
    with the mini web's CLIP, Haar faces and open_nsfw (no OCR): ``(root, manifest)`` with
    ``root/shards`` and ``root/scores``."""
    import pyarrow.parquet as pq

    from tests.pairs import KEEP_ALL
    from vlcurate import miniweb
    from vlcurate.jobs import extract as extract_job
    from vlcurate.jobs import filter as filter_job
    from vlcurate.pipeline.download.safety import SafetyConfig
    from vlcurate.pipeline.download.stage import DownloadConfig, download_stage
    from vlcurate.pipeline.extract.stage import ExtractConfig
    from vlcurate.pipeline.recipe import parse_recipe
    from vlcurate.pipeline.score.stage import ScoreConfig, score_shards

    root = tmp_path_factory.mktemp("scored-miniweb")
    port = miniweb.free_port()
    manifest = miniweb.build(root / "web", seed=0, port=port, n_shapes=40)
    with miniweb.serve(root / "web", port=port, slow_seconds=4):
        extract_job.run(
            [str(root / "web" / miniweb.WARC_FILE)],
            str(root / "extract"),
            ExtractConfig(),
            progress=False,
        )
        filter_job.run(str(root / "extract"), parse_recipe(KEEP_ALL), str(root / "candidates"))
        download_stage(
            pq.read_table(root / "candidates" / "pairs"),
            str(root / "shards"),
            DownloadConfig(
                image_size=128,
                processes=2,
                threads=16,
                samples_per_shard=40,
                timeout=2,
                host_concurrency=16,  # our own loopback server
                host_delay=0,
            ),
            SafetyConfig(allow_networks=[f"127.0.0.1:{port}"]),
        )
    config = ScoreConfig(
        model="tiny-clip",
        pretrained="miniweb",
        device="cpu",
        batch_size=64,
        workers=1,
        watermark="none",
    )
    tars = sorted(str(p) for p in (root / "shards").glob("*.tar"))
    score_shards(tars, str(root / "scores"), config, progress=False)
    return root, manifest


@pytest.fixture(scope="session")
def s3():
    """A real S3 endpoint (moto's server on 127.0.0.1) with one bucket, its address in
    ``AWS_ENDPOINT_URL`` and test credentials in the environment (subprocesses and Spark
    executors inherit them): a :class:`tests.s3.MotoS3`; ``s3.prefix(name)`` gives each test a
    fresh ``s3://bucket/name-XXXXXXXX``."""
    from tests.s3 import apply_env, restore_env

    with S3_SERVER as server:
        old = apply_env(server.env())
        try:
            yield server
        finally:
            restore_env(old)
