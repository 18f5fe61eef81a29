"""What the DataLoader worker processes do with each sample of a shard, and how their items
are batched.

The first pass decodes every image (libjpeg-turbo for plain JPEGs, :func:`~vlcurate.pipeline.
score.images.decode_pixels`), brings its center square to the batch's side in one resize
(:func:`~vlcurate.pipeline.score.pixels.square`), tokenises its caption (cached per distinct
caption), and, when asked, makes the pHash's 32 x 32 thumbnail and runs a CPU face detector. The
main process gets one uint8 array of pixels per batch and runs every model on the device. The
second pass, only with ``watermark=ocr``, runs OCR on the images that earned it. A sample whose
``.json`` is not a JSON object, or whose ``.txt`` is not UTF-8, is not decoded: its row carries
the reason (:data:`~vlcurate.pipeline.score.inputs.BAD_JSON`, ``BAD_TEXT``) and the shard goes on.
"""

import json
from dataclasses import dataclass

import numpy as np
import torch

from vlcurate.pipeline.score.images import blank_facts, decode, decode_pixels
from vlcurate.pipeline.score.inputs import BAD_JSON, BAD_TEXT
from vlcurate.pipeline.score.pixels import TokenCache, square
from vlcurate.pipeline.score.shards import image_bytes


def read_sample(index: int, sample: dict) -> tuple[dict, str | None]:
    """The sample's fields (key, caption, metadata), and the reason to drop it when one of
    its members is malformed (None: all well)."""
    reason = None
    try:
        meta = json.loads(sample.get("json") or b"{}")
    except ValueError:  # not JSON, or not UTF-8
        meta = None
    if not isinstance(meta, dict):
        meta, reason = {}, BAD_JSON
    text = sample.get("txt") or b""
    try:
        caption = text.decode("utf-8")
    except UnicodeDecodeError:
        caption, reason = text.decode("utf-8", "replace"), reason or BAD_TEXT
    item = {
        "index": index,
        "key": sample["__key__"],
        "caption": caption,
        "meta": meta,
        "face_boxes": [],
    }
    return item, reason


@dataclass
class FirstPass:
    """Per worker: decode, facts, the batch's pixels, tokens, the pHash thumbnail, CPU faces."""

    side: int  # the batch's square side: the largest any model on the device reads
    squash: bool  # the whole image squashed to the square, not its center (open_clip's mode)
    tokenize: object  # ClipScorer.tokenizer
    faces: str  # a CPU face detector in the workers, or "none"
    phash: bool
    face_frame: int = 0  # the side of the frame a device face detector reads; 0: none

    @property
    def min_side(self) -> int | None:
        """Large JPEGs decode at a reduced scale, down to twice the batch's side (or the face
        frame's); a CPU face detector sees the full image."""
        return None if self.faces != "none" else max(self.side, self.face_frame)

    def __call__(self, slots):
        """The work of one worker, writing each decoded sample's arrays into ``slots``
        (:class:`~vlcurate.pipeline.score.batches.Slots`)."""
        from vlcurate.pipeline.score.faces import face_detector

        detector = face_detector(self.faces) if self.faces != "none" else None
        tokens = TokenCache(lambda texts: self.tokenize(texts).numpy())
        if self.phash:
            from vlcurate.pipeline.score.phash import SIDE, thumbnail
        if self.face_frame:
            from vlcurate.pipeline.score.mtcnn_torch import letterbox
        frame = (self.face_frame, self.face_frame, 3)

        def work(index: int, sample: dict) -> dict:
            data = image_bytes(sample)
            item, reason = read_sample(index, sample)
            if reason is not None:
                item["facts"] = blank_facts(reason, len(data))
                return item
            rgb, item["facts"] = decode_pixels(data, self.min_side)
            if rgb is None:
                return item
            item["decoded"] = True
            row = tokens(item["caption"])
            slots.get("tokens", row.shape, row.dtype)[...] = row
            square(
                rgb,
                self.side,
                slots.get("pixels", (self.side, self.side, 3), np.uint8),
                self.squash,
            )
            if self.phash:
                slots.get("thumbnail", (SIDE, SIDE), np.uint8)[...] = thumbnail(rgb)
            item["face_boxes"] = detector.detect(rgb) if detector else []
            if self.face_frame:
                scale = letterbox(
                    rgb, self.face_frame, out=slots.get("face_frame", frame, np.uint8)
                )
                to_original = scale * item["facts"]["width"] / rgb.shape[1]
                slots.get("face_scale", (), np.float64)[...] = to_original
            return item

        return work


@dataclass
class OcrPass:
    """Per worker: OCR for stock-photo watermarks."""

    def __call__(self):
        from vlcurate.pipeline.score.watermark import OcrWatermark

        ocr = OcrWatermark()

        def work(index: int, sample: dict) -> dict:
            image, _ = decode(image_bytes(sample), phash=False)
            return {"index": index, **(ocr.detect(image) if image is not None else {})}

        return work


def collate(items: list[dict]) -> list[dict]:
    """The OCR pass's items, as they are (no arrays to stack)."""
    return items


def loader(dataset, workers: int, device: str, batch_size: int | None, collate_fn=collate):
    """``batch_size`` None: the dataset yields whole batches (and ``collate_fn`` gets each)."""
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=collate_fn,
        pin_memory=device.startswith("cuda"),
    )
