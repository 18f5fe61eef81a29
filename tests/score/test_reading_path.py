"""The fast reading path (libjpeg-turbo decode, one OpenCV resize to the batch's square, uint8
to the device) against open_clip's own transform: the same embeddings within a cosine of 0.995,
with the mini web's CLIP and a random ViT-B-32, and the same AUC on the mini web's true and
mismatched captions within 0.005."""

import io

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from tests.miniweb.test_miniweb_clip import auc, paired_shard, score_auc  # noqa: F401 (fixture)
from vlcurate.miniweb.images import PHOTOS, load_photo
from vlcurate.pipeline.score.clip import ClipScorer
from vlcurate.pipeline.score.images import decode, decode_pixels
from vlcurate.pipeline.score.pixels import square
from vlcurate.pipeline.score.shards import samples


def encoded(image: Image.Image, fmt: str = "JPEG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def variety() -> list[bytes]:
    """Real photos as a crawl serves them: square and not, larger than the model (DCT-scaled
    and area-averaged), smaller (upscaled), grayscale, PNG and WebP (Pillow's path), and
    img2dataset's 256 px squares."""
    rng = np.random.default_rng(0)
    photos = [load_photo(p.name)[0] for p in PHOTOS]
    photos = [p.convert("RGB") for p in photos if p is not None]
    out = []
    for n, photo in enumerate(photos):
        w, h = photo.size
        out.append(encoded(photo, quality=90))
        out.append(encoded(photo.resize((256, 256)), quality=85))
        out.append(encoded(photo.resize((max(1, w // 4), max(1, h // 4)))))  # smaller than 224
        big = photo.resize((w * 2, h * 2 + 37))
        out.append(encoded(big, quality=80))  # decoded at a reduced scale
        side = int(rng.integers(min(w, h) // 2, min(w, h)))
        crop = photo.crop((0, 0, side, int(side * rng.uniform(0.5, 2))))
        out.append(encoded(crop, "PNG" if n % 2 else "WEBP"))
        out.append(encoded(photo.convert("L")))
    return out


def embeddings(clip: ClipScorer, images, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Image embeddings by open_clip's transform, and by the reading path at ``side``."""
    reference = torch.stack([clip.preprocess(decode(d, phash=False)[0]) for d in images])
    fast = torch.from_numpy(
        np.stack([square(decode_pixels(d, min_side=side)[0], side) for d in images])
    )
    tokens = clip.tokenizer(["a photo"] * len(images))
    return (
        torch.from_numpy(clip.score_batch(reference, tokens)["image_emb"]),
        torch.from_numpy(clip.score_batch(fast, tokens)["image_emb"]),
    )


@pytest.fixture(scope="module")
def images():
    return variety()


def assert_same_embeddings(clip: ClipScorer, images, side: int) -> None:
    reference, fast = embeddings(clip, images, side)
    cosine = (reference * fast).sum(dim=1)
    print(f"{clip.model} at {side}: cosine mean {cosine.mean():.5f}, min {cosine.min():.5f}")
    assert cosine.mean() >= 0.995 and cosine.min() >= 0.95, cosine


@pytest.mark.parametrize("side", [None, 256])
def test_the_mini_webs_clip_sees_the_same_images(miniweb_clip, images, side):
    clip = ClipScorer(miniweb_clip["model"], miniweb_clip["final"])
    assert_same_embeddings(clip, images, side or clip.image_size)


@pytest.mark.slow
@pytest.mark.parametrize("side", [224, 256])
def test_a_random_vit_b_32_sees_the_same_images(images, side):
    assert_same_embeddings(ClipScorer("ViT-B-32", None), images, side)


def test_the_auc_on_the_mini_web_is_todays(miniweb_clip, paired_shard, tmp_path):  # noqa: F811
    """Today's: every image through open_clip's transform, as the score stage did."""
    clip = ClipScorer(miniweb_clip["model"], miniweb_clip["final"])
    reference = {}
    pairs = list(samples(str(paired_shard / "00000.tar")))
    for start in range(0, len(pairs), 64):
        chunk = [s for _, s in pairs[start : start + 64]]
        pixels = torch.stack([clip.preprocess(decode(s["jpg"], phash=False)[0]) for s in chunk])
        scores = clip.score_batch(pixels, [s["txt"].decode() for s in chunk])[clip.column]
        reference.update(zip([s["__key__"] for s in chunk], scores, strict=True))
    todays = auc(
        [v for k, v in reference.items() if k.endswith("_t")],
        [v for k, v in reference.items() if k.endswith("_m")],
    )
    fast = score_auc(paired_shard, tmp_path / "fast", miniweb_clip["final"])
    rows = pq.read_table(tmp_path / "fast" / "scores").to_pylist()
    worst = max(abs(r["clip_tiny_clip_sim"] - reference[r["key"]]) for r in rows)
    print(f"AUC today {todays:.4f}, fast path {fast:.4f}; worst similarity change {worst:.4f}")
    assert abs(fast - todays) <= 0.005


def test_a_square_is_the_center_of_the_image():
    """The crop is taken where open_clip's CenterCrop takes it, and written into the slot."""
    photo = skdata.coffee()  # 400 x 600
    slot = np.zeros((2, 64, 64, 3), np.uint8)
    out = square(photo, 64, out=slot[1])
    assert np.shares_memory(out, slot) and slot[0].max() == 0
    expected = np.asarray(Image.fromarray(photo[:, 100:500]).resize((64, 64), Image.BICUBIC))
    assert np.abs(out.astype(int) - expected).mean() < 3
    assert square(photo, 400).tolist() == photo[:, 100:500].tolist()  # no resize: a copy
    squashed = square(photo, 64, squash=True)
    whole = np.asarray(Image.fromarray(photo).resize((64, 64), Image.BICUBIC))
    assert np.abs(squashed.astype(int) - whole).mean() < 3
