"""Every default scorer on the device, through the stage: the same rows whatever the batch
size (1, 7, 64), bad images among good ones in a batch, and the batched detectors' answers
where the per-image ones are known (the astronaut's face, imagehash's pHash)."""

from dataclasses import replace

import imagehash
import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from tests.score.raw_shards import FAST, PHOTOS, encoded, jpeg, write_raw_shard
from vlcurate.pipeline.score.images import decode
from vlcurate.pipeline.score.stage import score_shards

DEFAULTS = replace(FAST, faces="mtcnn-torch", nsfw="open-nsfw", phash=True, workers=1)


def mixed_samples() -> list:
    """Real photos in the shapes a crawl serves, and broken files between them."""
    samples = []
    for name, photo in PHOTOS.items():
        image = Image.fromarray(photo).convert("RGB")
        w, h = image.size
        samples += [
            (f"{name}", jpeg(photo), f"a photo of the {name}"),
            (f"{name}-256", encoded(image.resize((256, 256)), quality=85), f"the {name}"),
            (f"{name}-big", encoded(image.resize((w * 2, h * 2)), quality=80), name),
            (f"{name}-small", encoded(image.resize((w // 5, h // 5)), "PNG"), name),
            (f"{name}-gray", encoded(image.convert("L")), f"a gray {name}"),
        ]
    samples.insert(3, ("truncated", jpeg(PHOTOS["coffee"])[:3000], "cut short"))
    samples.insert(9, ("empty", b"", "nothing"))
    samples.insert(12, ("not-an-image", b"<html>no</html>", "a page"))
    return samples


@pytest.fixture(scope="module")
def by_batch_size(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mixed")
    samples = mixed_samples()
    shard = write_raw_shard(folder, 0, samples)
    rows = {}
    for size in (1, 7, 64):
        out = folder / f"out-{size}"
        score_shards([shard], str(out), replace(DEFAULTS, batch_size=size), progress=False)
        rows[size] = pq.read_table(out / "scores").to_pylist()
    return samples, rows


def test_every_batch_size_gives_the_same_rows(by_batch_size):
    _, rows = by_batch_size
    exact = ("key", "status", "width", "height", "phash", "face_boxes", "face_model")
    floats = ("clip_tiny_clip_sim", "nsfw_p")
    for size in (7, 64):
        for one, other in zip(rows[1], rows[size], strict=True):
            assert {k: one[k] for k in exact} == {k: other[k] for k in exact}
            for key in floats:
                assert (one[key] is None) == (other[key] is None)
                if one[key] is not None:
                    assert abs(one[key] - other[key]) < 1e-5, (one["key"], key)


def test_bad_images_keep_their_reason_and_the_batch_goes_on(by_batch_size):
    samples, rows = by_batch_size
    status = {name: r["status"] for (name, *_), r in zip(samples, rows[64], strict=True)}
    assert status["truncated"] == status["not-an-image"] == "decode_error"
    assert status["empty"] == "empty_file"
    assert sum(s == "ok" for s in status.values()) == len(samples) - 3
    bad = [r for r in rows[64] if r["status"] != "ok"]
    assert all(r["nsfw_p"] is None and r["phash"] is None and r["face_count"] == 0 for r in bad)


def test_the_device_scorers_answer_as_the_per_image_ones(by_batch_size):
    samples, rows = by_batch_size
    for (name, data, _), row in zip(samples, rows[7], strict=True):
        if row["status"] != "ok":
            continue
        image = decode(data, phash=False)[0]
        if min(image.size) < 4 * 384:  # not decoded at a reduced scale: imagehash's own hash
            assert row["phash"] == str(imagehash.phash(image)), name
        assert 0 <= row["nsfw_p"] < 0.2, name
    faces = {name: r["face_count"] for (name, *_), r in zip(samples, rows[7], strict=True)}
    assert faces["astronaut"] == faces["astronaut-256"] == faces["astronaut-big"] == 1
    assert faces["coffee"] == faces["chelsea"] == faces["rocket"] == 0
    assert np.isfinite([r["clip_tiny_clip_sim"] for r in rows[7] if r["status"] == "ok"]).all()
