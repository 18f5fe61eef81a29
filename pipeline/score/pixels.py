"""The reading path's pixels: a decoded image to the square a batch holds, in one resize.

Every model of the score stage reads the same batch: each image's center square, its shorter
side brought to the batch's side ``S`` (open_clip's ``Resize(S)`` then ``CenterCrop(S)``), as
uint8 RGB, channels last. The crop is taken in the source first, so only the pixels kept are
resized, straight into the batch's slot. OpenCV's SIMD resize does it: bicubic up to a factor of
two (what Pillow's antialiased bicubic amounts to there), area averaging beyond (an antialiased
filter; a large JPEG already arrives DCT-scaled to at most four times ``S``). The models then
resize, crop and normalise on the device (:mod:`vlcurate.pipeline.score.clip`,
:mod:`vlcurate.pipeline.score.nsfw`).
"""

import cv2
import numpy as np

AREA_FROM = 2.0  # downscale factors at or above this average areas; below, bicubic
cv2.setNumThreads(1)  # one decode process per core: OpenCV's own threads would only contend


def center_square(height: int, width: int) -> tuple[int, int, int]:
    """``(top, left, side)`` of the largest centered square of an image, in its pixels."""
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side


def square(
    rgb: np.ndarray, side: int, out: np.ndarray | None = None, squash: bool = False
) -> np.ndarray:
    """The center square of ``rgb`` (H, W, 3) uint8 (or, with ``squash``, the whole image),
    resized to ``side`` x ``side``, written into ``out`` when given (a slot of a batch) and
    returned."""
    height, width = rgb.shape[:2]
    if squash:
        source, shorter = rgb, min(height, width)
    else:
        top, left, shorter = center_square(height, width)
        source = rgb[top : top + shorter, left : left + shorter]
    if out is None:
        out = np.empty((side, side, 3), np.uint8)
    if source.shape[:2] == (side, side):
        out[...] = source
        return out
    interpolation = cv2.INTER_AREA if shorter >= AREA_FROM * side else cv2.INTER_CUBIC
    cv2.resize(source, (side, side), dst=out, interpolation=interpolation)
    return out


class TokenCache:
    """A tokenizer's rows per distinct caption (alt text repeats: "image", a product name),
    forgotten all at once when ``size`` captions are held."""

    def __init__(self, tokenize, size: int = 4096):
        self.tokenize, self.size, self.rows = tokenize, size, {}

    def __call__(self, caption: str):
        row = self.rows.get(caption)
        if row is None:
            if len(self.rows) >= self.size:
                self.rows.clear()
            row = self.rows[caption] = self.tokenize([caption])[0]
        return row
