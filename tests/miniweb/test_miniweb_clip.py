"""The mini web's CLIP (tiny-clip trained by ``vlcurate.pipeline.train`` on mini-web scenes, the session
fixture ``miniweb_clip``) through ``curate score``: it tells true captions from mismatched
ones, where the random tiny-clip cannot."""

import io
import json
import random
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import webdataset as wds

from vlcurate.jobs import cli


def auc(positives: list[float], negatives: list[float]) -> float:
    """P(a true pair scores above a mismatched one); ties count half."""
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


@pytest.fixture(scope="module")
def paired_shard(miniweb_clip, tmp_path_factory):
    """200 held-out scenes, each twice: with its caption (``KEY_t``) and with the caption of
    another scene that says something else (``KEY_m``); a raw shard as img2dataset leaves it
    (tar, parquet sidecar, ``_stats.json``), which is what the score stage accepts."""
    samples = list(wds.WebDataset(miniweb_clip["heldout_shards"], shardshuffle=False))[:200]
    captions = [s["txt"].decode() for s in samples]
    rng = random.Random(0)
    folder = tmp_path_factory.mktemp("paired")
    keys = []
    with tarfile.open(folder / "00000.tar", "w") as tar:
        for i, sample in enumerate(samples):
            wrong = rng.choice([c for c in captions if c != captions[i]])
            for suffix, text in (("t", captions[i]), ("m", wrong)):
                key = f"{i:05d}_{suffix}"
                keys.append(key)
                for ext, data in (
                    ("jpg", sample["jpg"]),
                    ("txt", text.encode()),
                    ("json", json.dumps({"key": key}).encode()),
                ):
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    rows = [{"key": key, "url": f"http://x/{key}.jpg", "status": "success"} for key in keys]
    pq.write_table(pa.Table.from_pylist(rows), folder / "00000.parquet")
    (folder / "00000_stats.json").write_text(
        json.dumps({"count": len(rows), "successes": len(rows)})
    )
    return folder


def score_auc(shards, output, pretrained: str) -> float:
    code = cli.main(
        [
            "score",
            "--input",
            str(shards),
            "--output",
            str(output),
            "--model",
            "tiny-clip",
            "--pretrained",
            pretrained,
            "--device",
            "cpu",
            "--nsfw",
            "none",
            "--watermark",
            "none",
            "--faces",
            "none",
            "--no-phash",
            "--workers",
            "0",
            "--no-progress",
        ]
    )
    assert code == 0
    rows = pq.read_table(output / "scores").to_pylist()
    assert len(rows) == 400 and all(r["status"] == "ok" for r in rows)
    sims = {r["key"]: r["clip_tiny_clip_sim"] for r in rows}
    true = [v for k, v in sims.items() if k.endswith("_t")]
    mismatched = [v for k, v in sims.items() if k.endswith("_m")]
    return auc(true, mismatched)


def test_trained_clip_separates_true_from_mismatched_captions(miniweb_clip, paired_shard, tmp_path):
    trained = score_auc(paired_shard, tmp_path / "trained", miniweb_clip["final"])
    random_weights = score_auc(paired_shard, tmp_path / "random", "none")
    print(f"AUC true vs mismatched captions: trained {trained:.3f}, random {random_weights:.3f}")
    assert trained >= 0.9
    assert abs(random_weights - 0.5) < 0.15  # the untrained model cannot tell them apart


def test_auc():
    assert auc([1, 2], [0]) == 1.0 and auc([0], [1]) == 0.0 and auc([1], [1]) == 0.5
