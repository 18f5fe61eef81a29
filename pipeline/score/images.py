"""Decoding shard images for scoring without letting one bad image stop a batch.

Grayscale, CMYK, 16-bit and palette-with-transparency images are converted to RGB (over white);
animated images are scored on their first frame; undecodable and empty files get a status and
no pixels. Pillow's decompression-bomb limit stays on.

:func:`decode_pixels` is the scoring path: a plain JPEG (no EXIF block, whose orientation would
have to be applied; not CMYK; not multi-picture) is decoded by libjpeg-turbo through
``simplejpeg`` straight to a uint8 RGB array, at a reduced DCT scale when it is large; anything
else, and any JPEG libjpeg-turbo refuses, goes through Pillow as :func:`decode` does, so the
statuses and facts are the same either way.
"""

import io
import math

import imagehash
import numpy as np
import simplejpeg
from PIL import Image, ImageOps

from vlcurate.schemas.score import DECODE_ERROR, DECODED, EMPTY_FILE, TOO_LARGE  # noqa: F401 (re-exported)


def to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        return image.point(lambda v: v / 256).convert("L").convert("RGB")
    return image.convert("RGB")


def blank_facts(status: str, size: int = 0) -> dict:
    """The facts of an image not (yet) decoded: its status and byte size, the rest null."""
    return {
        "status": status,
        "bytes": size,
        "format": None,
        "width": None,
        "height": None,
        "aspect_ratio": None,
        "frames": None,
        "phash": None,
    }


REDUCING_GAP = 2  # decode at a reduced scale only down to twice the size needed (as thumbnail)


def decode(
    data: bytes, phash: bool = True, min_side: int | None = None
) -> tuple[Image.Image | None, dict]:
    """``(rgb image or None, facts)``: facts has status, format, bytes, width, height,
    aspect_ratio, frames and (with ``phash``) the perceptual hash in hex, when decoded.

    With ``min_side``, a JPEG at least twice that on its shorter side is decoded at a reduced
    scale (libjpeg's DCT scaling, Pillow's ``draft``, as ``Image.thumbnail`` does), never below
    twice ``min_side``: much less work for large photos, and the consumer's own resize still
    does the last, antialiased step. The facts keep the full size."""
    facts = blank_facts(DECODED, len(data or b""))
    if not data:
        facts["status"] = EMPTY_FILE
        return None, facts
    try:
        image = Image.open(io.BytesIO(data))
        facts["format"] = image.format
        facts["frames"] = getattr(image, "n_frames", 1)
        image.seek(0)
        full = image.size
        if min_side and image.format == "JPEG" and min(full) >= 2 * REDUCING_GAP * min_side:
            scale = REDUCING_GAP * min_side / min(full)
            image.draft(image.mode, (math.ceil(full[0] * scale), math.ceil(full[1] * scale)))
        drafted = image.size
        image = to_rgb(ImageOps.exif_transpose(image))
        if image.size != drafted:  # rotated by its EXIF orientation
            full = full[::-1]
    except Image.DecompressionBombError:
        facts["status"] = TOO_LARGE
        return None, facts
    except Exception:  # truncated, corrupt, not an image
        facts["status"] = DECODE_ERROR
        return None, facts
    facts.update(
        width=full[0],
        height=full[1],
        aspect_ratio=round(full[0] / full[1], 4),
        phash=str(imagehash.phash(image)) if phash else None,
    )
    return image, facts


JPEG_MAGIC = b"\xff\xd8\xff"
PILLOW_ONLY = (b"Exif\0\0", b"MPF\0")  # orientation to apply; a multi-picture file's frames
HEADER_BYTES = 1 << 16  # where those markers would be


def _plain_jpeg(data: bytes) -> bool:
    head = data[:HEADER_BYTES]
    return data.startswith(JPEG_MAGIC) and not any(marker in head for marker in PILLOW_ONLY)


def _turbo(data: bytes, min_side: int | None) -> tuple[np.ndarray | None, dict] | None:
    """libjpeg-turbo's decode, or None to let Pillow decide (what it refuses, CMYK)."""
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
        if colorspace in ("CMYK", "YCCK"):
            return None
        facts = blank_facts(DECODED, len(data))
        facts.update(format="JPEG", frames=1, width=width, height=height)
        facts["aspect_ratio"] = round(width / height, 4)
        if width * height > 2 * (Image.MAX_IMAGE_PIXELS or math.inf):
            return None, blank_facts(TOO_LARGE, len(data))  # as Pillow's bomb check
        least = REDUCING_GAP * min_side if min_side else 0
        wanted = least if least and min(width, height) >= 2 * least else 0
        rgb = simplejpeg.decode_jpeg(data, min_height=wanted, min_width=wanted, min_factor=2)
        return rgb, facts
    except ValueError:  # truncated, corrupt, an unsupported variant: Pillow decides
        return None


def decode_pixels(data: bytes, min_side: int | None = None) -> tuple[np.ndarray | None, dict]:
    """``(rgb (H, W, 3) uint8 or None, facts)`` as :func:`decode` (without the pHash), fast for
    plain JPEGs; with ``min_side`` a large JPEG is decoded at a reduced scale, never below twice
    ``min_side`` on its shorter side. The facts keep the full size."""
    if data and _plain_jpeg(data):
        fast = _turbo(data, min_side)
        if fast is not None:
            return fast
    image, facts = decode(data, phash=False, min_side=min_side)
    return (None if image is None else np.asarray(image)), facts
