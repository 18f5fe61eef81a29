"""The batched perceptual hash is imagehash's, bit for bit, on photos, crops, JPEGs and odd sizes."""

import io

import imagehash
import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from vlcurate.pipeline.score import phash

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "horse", "moon", "clock")


def imagehash_of(rgb: np.ndarray) -> str:
    return str(imagehash.phash(Image.fromarray(rgb)))


def jpeg_round_trip(rgb: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def as_rgb(image: np.ndarray) -> np.ndarray:
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    return np.stack([image] * 3, axis=-1) if image.ndim == 2 else image[..., :3]


@pytest.fixture(scope="module")
def photo_images() -> list[np.ndarray]:
    """Whole photos at a few sizes, then 220 random crops with a fixed seed, a third of them
    through JPEG at qualities 20 to 95."""
    rng = np.random.default_rng(7)
    photos = [as_rgb(getattr(skdata, name)()) for name in PHOTOS]
    images = []
    for photo in photos:
        for side in (256, 100, 33):
            images.append(np.asarray(Image.fromarray(photo).resize((side, side * 3 // 4))))
        images.append(jpeg_round_trip(photo, 75))
    for i in range(220):
        photo = photos[i % len(photos)]
        height, width = photo.shape[:2]
        top, left = rng.integers(0, height - 4), rng.integers(0, width - 4)
        bottom, right = rng.integers(top + 4, height + 1), rng.integers(left + 4, width + 1)
        crop = np.ascontiguousarray(photo[top:bottom, left:right])
        images.append(jpeg_round_trip(crop, int(rng.integers(20, 96))) if i % 3 == 0 else crop)
    return images


def batch_hashes(images: list[np.ndarray], device: str = "cpu") -> list[str]:
    thumbnails = np.stack([phash.thumbnail(rgb) for rgb in images])
    return phash.hashes(torch.from_numpy(thumbnails).to(device))


def test_hashes_equal_imagehash_on_photos_crops_and_jpegs(photo_images):
    assert len(photo_images) >= 200
    assert batch_hashes(photo_images) == [imagehash_of(rgb) for rgb in photo_images]


def test_uniform_tiny_and_thin_images():
    images = [
        np.zeros((1, 1, 3), np.uint8),
        np.full((1, 1, 3), 200, np.uint8),
        np.full((64, 64, 3), 128, np.uint8),  # flat gray: every AC coefficient ties at 0
        np.full((300, 200, 3), 255, np.uint8),
        np.random.default_rng(1).integers(0, 256, (11, 400, 3), dtype=np.uint8),
        np.random.default_rng(2).integers(0, 256, (400, 11, 3), dtype=np.uint8),
        np.tile(np.arange(0, 250, 10, dtype=np.uint8)[None, :, None], (5, 1, 3)),  # rows alike
    ]
    expected = [imagehash_of(rgb) for rgb in images]
    assert expected[2] == "8000000000000000"  # only the DC coefficient is above the median
    assert batch_hashes(images) == expected


def test_batch_size_does_not_change_the_strings(photo_images):
    thumbnails = torch.from_numpy(np.stack([phash.thumbnail(rgb) for rgb in photo_images[:64]]))
    whole = phash.hashes(thumbnails)
    for size in (1, 7):
        parts = [phash.hashes(thumbnails[i : i + size]) for i in range(0, 64, size)]
        assert [h for part in parts for h in part] == whole
    assert phash.hashes(thumbnails[:0]) == []


def test_bit_order_is_imagehash_s():
    """An image whose bits read differently in any other order: checks the hex packing
    against the bit array imagehash keeps, not only against its string."""
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[:5, :3] = 255
    rgb[20:, 10:] = 90
    thumbnail = torch.from_numpy(phash.thumbnail(rgb))[None]
    bits = imagehash.phash(Image.fromarray(rgb)).hash.flatten()
    assert phash.hashes(thumbnail)[0] == f"{int(''.join('01'[int(b)] for b in bits), 2):016x}"
    assert phash.hashes(thumbnail)[0] == "9e7bbfff78808000"


def test_thumbnail_is_imagehash_s_own_input(photo_images):
    """What imagehash resizes to, for photos and for random pixels of every shape kind:
    up- and downscaling, either pass first, one side exactly 32."""
    assert phash.numpy_matches_pillow()
    rng = np.random.default_rng(3)
    shapes = [(int(h), int(w)) for h, w in rng.integers(1, 700, (150, 2))]
    shapes += [(32, 32), (32, 500), (500, 32), (1, 700), (700, 1), (34, 33), (35, 33), (36, 33)]
    randoms = [rng.integers(0, 256, (*shape, 3), dtype=np.uint8) for shape in shapes]
    for rgb in [*photo_images[::4], *randoms]:
        own = np.asarray(Image.fromarray(rgb).convert("L").resize((32, 32), Image.LANCZOS))
        got = phash.thumbnail(rgb)
        assert got.dtype == np.uint8 and np.array_equal(got, own), rgb.shape


def test_luma_is_pillow_s_for_every_colour():
    values = np.arange(1 << 24, dtype=np.uint32)
    colours = np.stack([values >> 16, values >> 8, values], axis=-1).astype(np.uint8)
    for part in np.array_split(colours.reshape(4096, 4096, 3), 4):
        expected = np.asarray(Image.fromarray(part).convert("L"))
        assert np.array_equal(phash.luma(part), expected)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError):
        phash.thumbnail(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError):
        phash.thumbnail(np.zeros((0, 4, 3), np.uint8))
    with pytest.raises(ValueError):
        phash.hashes(torch.zeros((2, 16, 16), dtype=torch.uint8))
    with pytest.raises(ValueError):
        phash.hashes(torch.zeros((2, 32, 32)))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_gives_the_cpu_strings(photo_images):
    images = [*photo_images, np.full((9, 9, 3), 77, np.uint8)]
    assert batch_hashes(images, "cuda") == batch_hashes(images, "cpu")
