"""Decoding shard images for scoring without letting one bad image stop a batch.

Grayscale, CMYK, 16-bit and palette-with-transparency images are converted to RGB (over white);
animated images are scored on their first frame; undecodable and empty files get a status and
no pixels. Pillow's decompression-bomb limit stays on.
"""

import io

import imagehash
from PIL import Image, ImageOps

from schemas.score import DECODE_ERROR, DECODED, EMPTY_FILE, TOO_LARGE  # noqa: F401 (re-exported)


def to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        return image.point(lambda v: v / 256).convert("L").convert("RGB")
    return image.convert("RGB")


def decode(data: bytes, phash: bool = True) -> tuple[Image.Image | None, dict]:
    """``(rgb image or None, facts)``: facts has status, format, bytes, width, height,
    aspect_ratio, frames and (with ``phash``) the perceptual hash in hex, when decoded."""
    facts = {"status": DECODED, "bytes": len(data or b""), "format": None, "width": None,
             "height": None, "aspect_ratio": None, "frames": None, "phash": None}  # fmt: skip
    if not data:
        facts["status"] = EMPTY_FILE
        return None, facts
    try:
        image = Image.open(io.BytesIO(data))
        facts["format"] = image.format
        facts["frames"] = getattr(image, "n_frames", 1)
        image.seek(0)
        image = to_rgb(ImageOps.exif_transpose(image))
    except Image.DecompressionBombError:
        facts["status"] = TOO_LARGE
        return None, facts
    except Exception:  # truncated, corrupt, not an image
        facts["status"] = DECODE_ERROR
        return None, facts
    facts.update(width=image.width, height=image.height,
                 aspect_ratio=round(image.width / image.height, 4),
                 phash=str(imagehash.phash(image)) if phash else None)  # fmt: skip
    return image, facts
