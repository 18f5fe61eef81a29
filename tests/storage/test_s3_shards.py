"""Shards in a bucket (moto's real S3 server on 127.0.0.1, real s3fs): the score stage reads
them and writes its scores there, the same as on disk; webdataset and the training loader
stream them."""

import io
import json
import subprocess
import sys

import fsspec
import numpy as np
import pytest
import webdataset as wds

from tests.pairs import KEEP_ALL
from vlcurate.pipeline import storage
from vlcurate.pipeline.recipe import parse_recipe
from vlcurate.pipeline.score.clip import CONFIGS
from vlcurate.pipeline.score.stage import ScoreConfig, score_shards
from vlcurate.pipeline.select.stage import select

pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.fixture(scope="module")
def bucket_shards(s3, scored_miniweb):
    """The mini web's downloaded shards (tar, parquet sidecar, stats), copied to the bucket."""
    root, _ = scored_miniweb
    target = s3.prefix("shards")
    fs = fsspec.filesystem("s3")
    for path in sorted((root / "shards").glob("0*")):
        fs.put(str(path), storage.join(target, path.name))
    return root, target


def _table(url: str):
    table = storage.read_table(url)
    return table.drop_columns([c for c in table.column_names if c in ("shard", "path")])


@pytest.fixture(scope="module")
def bucket_scores(bucket_shards):
    root, shards = bucket_shards
    output = shards + "-scores"
    config = ScoreConfig(
        model="tiny-clip",
        pretrained="miniweb",
        device="cpu",
        batch_size=64,
        workers=1,
        watermark="none",
    )
    tars = storage.glob(storage.join(shards, "*.tar"))
    assert tars and all(t.startswith("s3://") for t in tars)
    return tars, output, score_shards(tars, output, config, progress=False)


def test_score_reads_shards_from_s3_and_writes_scores_there(bucket_shards, bucket_scores):
    root, _ = bucket_shards
    tars, output, summary = bucket_scores
    local = json.loads((root / "scores" / "stats.json").read_text())
    assert summary["in"] == local["in"] and summary["kept"] == local["kept"]
    assert summary["dropped"] == local["dropped"]
    for tar in tars:
        name = tar.rsplit("/", 1)[1].removesuffix(".tar")
        remote = _table(storage.join(output, "scores", f"{name}.parquet"))
        here = _table(str(root / "scores" / "scores" / f"{name}.parquet"))
        assert remote.column_names == here.column_names
        assert remote.column("key").to_pylist() == here.column("key").to_pylist()
        for column in ("status", "phash", "face_count"):
            if column in here.column_names:
                assert remote.column(column).to_pylist() == here.column(column).to_pylist()
        emb = storage.read_bytes(storage.join(output, "img_emb", f"{name}.npy"))
        here_emb = np.load(root / "scores" / "img_emb" / f"{name}.npy")
        assert np.allclose(np.load(io.BytesIO(emb)), here_emb, atol=1e-5)
        assert storage.exists(storage.join(output, "_done", f"{name}.json"))


def test_select_on_s3_and_open_clip_reads_the_bucket_through_a_pipe(
    bucket_shards, bucket_scores, tmp_path
):
    """The final shards written to the bucket; open_clip's own trainer reads them with
    ``--train-data 'pipe:python -m vlcurate.jobs.cat s3://.../{00000..N}.tar'``."""
    root, shards = bucket_shards
    _, scores, _ = bucket_scores
    recipe = parse_recipe({**KEEP_ALL, "select": {"samples_per_shard": 40}})
    final = shards + "-final"
    select(shards, scores, recipe, final, progress=False, report=None)
    select(str(root / "shards"), str(root / "scores"), recipe, str(tmp_path / "f"), progress=False)
    here = storage.read_table(str(tmp_path / "f" / "selection.parquet")).to_pylist()
    assert storage.read_table(storage.join(final, "selection.parquet")).to_pylist() == here
    manifest = json.loads(storage.read_text(storage.join(final, "manifest.json")))
    last = len(manifest["shards"]) - 1
    config = json.loads((CONFIGS / "tiny-clip.json").read_text())
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "open_clip_config.json").write_text(json.dumps({"model_cfg": config}))
    data = f"pipe:{sys.executable} -m vlcurate.jobs.cat {final}/{{00000..{last:05d}}}.tar"
    argv = [sys.executable, "-m", "open_clip_train.main", "--train-data", data]
    argv += ["--dataset-type", "webdataset", "--train-num-samples", "32", "--batch-size", "16"]
    argv += ["--epochs", "1", "--workers", "1", "--model", f"local-dir:{tmp_path / 'tiny'}"]
    argv += ["--device", "cpu", "--precision", "fp32", "--logs", str(tmp_path / "logs")]
    argv += ["--name", "s3", "--save-frequency", "0", "--report-to", "", "--seed", "0"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-3000:]
    assert "Train Epoch: 0" in log, log[-3000:]


def test_webdataset_streams_shards_from_the_bucket(bucket_shards):
    root, shards = bucket_shards
    pattern = storage.brace_pattern(storage.glob(storage.join(shards, "*.tar")))
    storage.webdataset_reads_urls()
    remote = [s["__key__"] for s in wds.WebDataset(pattern, shardshuffle=False)]
    here = storage.brace_pattern(sorted(str(p) for p in (root / "shards").glob("*.tar")))
    assert remote == [s["__key__"] for s in wds.WebDataset(here, shardshuffle=False)]
    assert len(remote) > 0
    piped = f"pipe:{sys.executable} -m vlcurate.jobs.cat {pattern}"
    assert [s["__key__"] for s in wds.WebDataset(piped, shardshuffle=False)] == remote


def test_the_training_loader_reads_the_bucket_in_worker_processes(bucket_shards):
    """``curate train clip --shards 's3://...'``: pipeline/train/stream.py's DataLoader, with
    a worker process, decodes batches from the bucket."""
    from vlcurate.pipeline.train.clip import TrainConfig
    from vlcurate.pipeline.train.stream import make_loader

    _, shards = bucket_shards
    pattern = storage.brace_pattern(storage.glob(storage.join(shards, "*.tar")))
    config = TrainConfig(
        shards=pattern,
        model=str(CONFIGS / "tiny-clip.json"),
        output="unused",
        batch_size=8,
        samples_per_epoch=16,
        workers=1,
        shuffle_buffer=8,
        device="cpu",
        progress=False,
    )
    import open_clip
    import torchvision.transforms as T

    preprocess = T.Compose([T.Resize((32, 32)), T.ToTensor()])
    tokenizer = open_clip.get_tokenizer("RN50")
    batches = list(make_loader(config, preprocess, tokenizer, epoch=0))
    assert len(batches) == 2
    images, tokens = batches[0]
    assert tuple(images.shape) == (8, 3, 32, 32) and tokens.shape[0] == 8
