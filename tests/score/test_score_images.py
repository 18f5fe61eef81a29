"""Every odd image kind is scored or dropped with a reason; none raises."""

import io

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from vlcurate.pipeline.score.images import DECODE_ERROR, DECODED, EMPTY_FILE, TOO_LARGE, decode


def encoded(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def test_ordinary_and_unusual_modes_decode_to_rgb():
    astronaut = Image.fromarray(skdata.astronaut())
    palette = astronaut.convert("P")
    transparent = Image.new("RGBA", (40, 30), (255, 0, 0, 0))
    frames = [Image.new("RGB", (20, 20), c) for c in ("red", "blue")]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:])
    cases = {
        "jpeg": encoded(astronaut, "JPEG"),
        "grayscale": encoded(astronaut.convert("L"), "PNG"),
        "cmyk": encoded(astronaut.convert("CMYK"), "JPEG"),
        "16-bit": encoded(Image.fromarray(np.full((20, 30), 40000, dtype=np.uint16)), "PNG"),
        "palette": encoded(palette, "PNG"),
        "palette+transparency": encoded(transparent.convert("P"), "PNG", transparency=0),
        "rgba": encoded(transparent, "PNG"),
        "animated gif": gif.getvalue(),
    }
    for name, data in cases.items():
        image, facts = decode(data)
        assert facts["status"] == DECODED and image.mode == "RGB", name
        assert facts["width"] == image.width and len(facts["phash"]) == 16, name
    assert decode(cases["animated gif"])[1]["frames"] == 2
    assert decode(cases["rgba"])[0].getpixel((0, 0)) == (255, 255, 255)  # transparent -> white


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"", EMPTY_FILE),
        (b"<html>not an image</html>", DECODE_ERROR),
        (encoded(Image.new("RGB", (300, 300), "red"), "JPEG")[:400], DECODE_ERROR),  # truncated
    ],
)
def test_bad_files_get_a_status(data, status):
    image, facts = decode(data)
    assert image is None and facts["status"] == status


def test_decompression_bomb_is_refused(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # a 2000-pixel image counts as a bomb here
    image, facts = decode(encoded(Image.new("RGB", (100, 40), "red"), "PNG"))
    assert image is None and facts["status"] == TOO_LARGE


def test_near_duplicates_have_close_phashes():
    import imagehash

    coffee = Image.fromarray(skdata.coffee())
    small = coffee.resize((coffee.width // 2, coffee.height // 2))
    a = imagehash.hex_to_hash(decode(encoded(coffee, "JPEG"))[1]["phash"])
    b = imagehash.hex_to_hash(decode(encoded(small, "JPEG", quality=60))[1]["phash"])
    c = imagehash.hex_to_hash(
        decode(encoded(Image.fromarray(skdata.astronaut()), "JPEG"))[1]["phash"]
    )
    assert a - b <= 6 < a - c


def test_large_jpegs_decode_at_a_reduced_scale_and_keep_their_full_size():
    photo = Image.fromarray(skdata.astronaut()).resize((1024, 768))
    data = encoded(photo, "JPEG", quality=90)
    image, facts = decode(data, min_side=150)
    assert image.size == (512, 384)  # libjpeg halves it; a quarter would be under 2 x 150
    assert (facts["width"], facts["height"]) == (1024, 768)
    image, _ = decode(data, min_side=224)  # 768 < 2 x 2 x 224: halving would go under 448
    assert image.size == (1024, 768)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    image, facts = decode(encoded(photo, "JPEG", exif=exif), min_side=100)
    assert (facts["width"], facts["height"]) == (768, 1024) and image.width < image.height
    small, facts = decode(encoded(photo.resize((256, 192)), "PNG"), min_side=32)
    assert small.size == (256, 192)  # only JPEGs have a reduced-scale decode
