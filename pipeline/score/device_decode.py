"""JPEG decoding and resizing on the GPU (``decode=device``), for CLIP-only scoring at speed.

On a GPU machine the CPU side, not the GPU, limits the stage: Pillow's decode and bicubic
resize cost a few milliseconds per image per core, so 16 cores feed about 3,000 images/s while
an H100 runs ViT-B-32 at about 11,000 (benchmarks/RESULTS.md). With ``decode=device`` the
workers only read a JPEG's header (size, mode, orientation) and pass its bytes on; the main
process decodes whole batches with nvJPEG (``torchvision.io.decode_jpeg`` on CUDA), then
resizes (bicubic, antialiased, as open_clip's Pillow transform does) and centre-crops on the
device. Anything else (PNG, WebP, CMYK or EXIF-rotated JPEGs) is decoded by Pillow in the
workers as usual, and a JPEG nvJPEG rejects gets ``decode_error``.

The pixels differ from Pillow's by rounding (at most a few levels of 255), so CLIP scores agree
to about 1e-2, not bit for bit; faces, open_nsfw and pHash need the workers' Pillow images and
are refused with this mode.
"""

import io

import torch
from PIL import Image

from schemas.score import DECODED

EXIF_ORIENTATION = 0x0112


def probe_jpeg(data: bytes) -> dict | None:
    """The facts of an RGB or greyscale JPEG with no EXIF rotation, read from its header alone;
    ``None`` for anything the device path should leave to Pillow."""
    try:
        image = Image.open(io.BytesIO(data))
        if image.format != "JPEG" or image.mode not in ("RGB", "L"):
            return None
        if image.getexif().get(EXIF_ORIENTATION, 1) != 1:
            return None
    except Exception:
        return None
    width, height = image.size
    return {"status": DECODED, "bytes": len(data), "format": "JPEG", "width": width,
            "height": height, "aspect_ratio": round(width / height, 4), "frames": 1,
            "phash": None}  # fmt: skip


def as_tensor(data: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def _resize_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """(N, 3, H, W) uint8, one size -> (N, 3, size, size) uint8: shorter side to ``size``
    (bicubic, antialiased), then the centre crop; torchvision's Resize + CenterCrop arithmetic."""
    h, w = images.shape[-2:]
    short, long = (h, w) if h <= w else (w, h)
    new_short, new_long = size, int(size * long / short)
    new_h, new_w = (new_short, new_long) if h <= w else (new_long, new_short)
    if (new_h, new_w) != (h, w):
        resized = torch.nn.functional.interpolate(
            images.float(), size=(new_h, new_w), mode="bicubic", antialias=True, align_corners=False
        )
        images = resized.round_().clamp_(0, 255).to(torch.uint8)
    top, left = int(round((new_h - size) / 2.0)), int(round((new_w - size) / 2.0))
    return images[..., top : top + size, left : left + size]


def decode_on_device(
    jpegs: list[torch.Tensor], size: int, device: str
) -> tuple[torch.Tensor | None, list[bool]]:
    """Decode a batch of JPEG byte tensors on ``device`` and bring each to ``size`` x ``size``.
    Returns the uint8 batch of those that decoded, and which did."""
    from torchvision.io import ImageReadMode, decode_jpeg

    try:
        images = decode_jpeg(jpegs, mode=ImageReadMode.RGB, device=device)
        ok = [True] * len(jpegs)
    except RuntimeError:  # one bad file fails the whole call: find it
        images, ok = [], []
        for jpeg in jpegs:
            try:
                images.append(decode_jpeg(jpeg, mode=ImageReadMode.RGB, device=device))
                ok.append(True)
            except RuntimeError:
                ok.append(False)
    if not images:
        return None, ok
    out = [None] * len(images)
    by_size: dict[tuple, list[int]] = {}
    for i, image in enumerate(images):
        by_size.setdefault(tuple(image.shape), []).append(i)
    for positions in by_size.values():  # one interpolate per distinct size
        batch = _resize_crop(torch.stack([images[i] for i in positions]), size)
        for i, resized in zip(positions, batch, strict=True):
            out[i] = resized
    return torch.stack(out), ok
