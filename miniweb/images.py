"""Image bytes for the mini web: real photos, deterministic encoders, duplicates and near
duplicates, stock-photo watermarks, and the broken files (truncated JPEG, decompression bomb).

Encoders fix every parameter (quality, subsampling, no metadata, fixed zlib level), so the same
picture always gives the same bytes with the same Pillow.
"""

import io
import struct
import warnings
import zlib
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

JPEG_QUALITY = 88


@dataclass(frozen=True, slots=True)
class Photo:
    """A real photo that ships inside an installed package, with what it really shows."""

    name: str
    caption: str
    faces: int = 0


# skimage.data images that are inside the scikit-image wheel (no network), and matplotlib's
# sample photo of Grace Hopper. Faces are real, visible human faces.
PHOTOS = (
    Photo("astronaut", "a smiling astronaut in an orange spacesuit beside an American flag", 1),
    Photo("chelsea", "close-up of a tabby cat with green eyes"),
    Photo("coffee", "a cup of espresso on a red saucer on a wooden table"),
    Photo("rocket", "a rocket on its launch pad between two towers at dusk"),
    Photo("horse", "a black silhouette of a horse on a white background"),
    Photo("camera", "a black and white photo of a man looking through a camera on a tripod", 1),
    Photo("hubble_deep_field", "a telescope image of hundreds of distant galaxies"),
    Photo("grace_hopper", "a portrait of Grace Hopper in her navy uniform", 1),
)
# Photos that only appear under a caption that is wrong for them.
MISMATCH_PHOTOS = (
    Photo("coins", "rows of old coins on a black background"),
    Photo("colorwheel", "a colour wheel on a black background"),
    Photo("immunohistochemistry", "a microscope image of stained tissue"),
)


def _require(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"the mini web needs {module.split('.')[0]} for its real photos "
            "(pip install -c constraints.txt scikit-image matplotlib)"
        ) from e


def load_photo(name: str) -> tuple[Image.Image | None, bytes | None]:
    """``(image, None)`` for an skimage picture, ``(None, jpeg_bytes)`` for Grace Hopper, whose
    original JPEG file is served as it is."""
    if name == "grace_hopper":
        cbook = _require("matplotlib.cbook")
        path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
        with open(path, "rb") as f:
            return None, f.read()
    data = _require("skimage.data")
    array = getattr(data, name)()
    if array.dtype == bool:  # horse: True is the white background
        array = array.astype("uint8") * 255
    image = Image.fromarray(array)
    return (image.convert("RGB") if image.mode not in ("RGB", "L") else image), None


def encode(image: Image.Image, fmt: str, quality: int = JPEG_QUALITY) -> bytes:
    """Deterministic JPEG (4:2:0, baseline, no EXIF) or PNG (zlib level 6, no metadata)."""
    out = io.BytesIO()
    if fmt == "jpeg":
        image.convert("L" if image.mode == "L" else "RGB").save(
            out, "JPEG", quality=quality, subsampling=2, optimize=False, progressive=False
        )
    elif fmt == "png":
        image.save(out, "PNG", compress_level=6, optimize=False)
    else:
        raise ValueError(f"unknown format {fmt!r}")
    return out.getvalue()


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def size_of(data: bytes) -> tuple[int | None, int | None]:
    """Width and height from the header (truncated files and bombs too); ``(None, None)``
    when the bytes are not an image."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as image:
                return image.size
        except Image.DecompressionBombError:
            return _png_size(data)
        except (OSError, ValueError):
            return None, None


def _png_size(data: bytes) -> tuple[int | None, int | None]:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24])
    return None, None


def resized(data: bytes, scale: float) -> bytes:
    image = decode(data)
    size = (round(image.width * scale), round(image.height * scale))
    return encode(image.resize(size, Image.Resampling.LANCZOS), "jpeg")


def reencoded(data: bytes, quality: int = 35) -> bytes:
    return encode(decode(data), "jpeg", quality)


def cropped(data: bytes, fraction: float = 0.06) -> bytes:
    """Crop ``fraction`` of the width and height off each side (shapes keep a 10% margin)."""
    image = decode(data)
    dx, dy = round(image.width * fraction), round(image.height * fraction)
    return encode(image.crop((dx, dy, image.width - dx, image.height - dy)), "jpeg")


def watermarked(
    image: Image.Image, text: str = "shutterstock", image_id: int = 1029384756, opacity: int = 140
) -> bytes:
    """A stock-photo overlay: the agency name large across the middle, semi-transparent white
    with a dark outline, and a footer strip with the name and an image number."""
    base = image.convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    pen = ImageDraw.Draw(layer)
    big = ImageFont.load_default(size=max(24, base.width // 6))
    box = pen.textbbox((0, 0), text, font=big, stroke_width=2)
    x = (base.width - (box[2] - box[0])) // 2
    y = (base.height - (box[3] - box[1])) // 2 - box[1]
    pen.text(
        (x, y),
        text,
        font=big,
        fill=(255, 255, 255, opacity),
        stroke_width=2,
        stroke_fill=(40, 40, 40, opacity),
    )
    strip = max(18, base.height // 14)
    pen.rectangle([0, base.height - strip, base.width, base.height], fill=(255, 255, 255, 200))
    small = ImageFont.load_default(size=strip * 2 // 3)
    footer = f"{text}  ·  Image ID: {image_id}"
    pen.text((8, base.height - strip + 2), footer, font=small, fill="black")
    return encode(Image.alpha_composite(base, layer).convert("RGB"), "jpeg")


def truncated(data: bytes, keep: float = 0.35) -> bytes:
    """The first ``keep`` of a JPEG: the header parses, the scan stops early (no EOI marker)."""
    return data[: int(len(data) * keep)]


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def bomb_png(width: int = 40000, height: int = 40000, rows: int = 8) -> bytes:
    """A PNG of a few hundred bytes whose header declares ``width`` x ``height`` RGB pixels
    (4.8 GB decoded). Its IDAT holds only ``rows`` rows: any decoder that trusts the header
    allocates the whole image before it notices. PIL refuses it on ``open`` with
    ``DecompressionBombError``."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    scanlines = (b"\x00" + b"\x00" * (3 * width)) * rows
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(scanlines, 9))
        + _png_chunk(b"IEND", b"")
    )


def placeholder_gif() -> bytes:
    """A 1x1 transparent GIF, the ``src`` placeholder of lazy-loaded images."""
    return (
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00"
        b"\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
    )


def thumbnail(data: bytes, width: int) -> bytes:
    """A smaller JPEG of an image, for the non-largest ``srcset`` candidates."""
    image = decode(data)
    height = max(1, round(image.height * width / image.width))
    return encode(image.resize((width, height), Image.Resampling.LANCZOS), "jpeg", 80)
