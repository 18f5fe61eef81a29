"""What the DataLoader worker processes do with each sample of a shard, and how their items
are batched.

The first pass decodes, hashes, face-detects and preprocesses every image, so the main process
only moves uint8 batches to the device and runs the models. The second, only with
``watermark=ocr``, runs OCR on the images that earned it. A sample whose ``.json`` is not a
JSON object, or whose ``.txt`` is not UTF-8, is not decoded: its row carries the reason
(:data:`~vlcurate.pipeline.score.inputs.BAD_JSON`, ``BAD_TEXT``) and the shard goes on.
"""

import json
from dataclasses import dataclass

import numpy as np
import torch

from vlcurate.pipeline.score.images import blank_facts, decode
from vlcurate.pipeline.score.inputs import BAD_JSON, BAD_TEXT
from vlcurate.pipeline.score.shards import image_bytes

OPEN_NSFW_SIDE = 256  # open_nsfw resizes to 256, then crops 224


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
    """Per worker: decode, facts, faces, CLIP's uint8 pixels and tokens, open_nsfw's input."""

    prepare: object  # ClipScorer.prepare
    tokenize: object  # ClipScorer.tokenizer
    faces: str
    nsfw: bool
    phash: bool
    image_size: int  # CLIP's input side

    @property
    def min_side(self) -> int | None:
        """The side every consumer is served by (large JPEGs decode at a reduced scale, down
        to twice this); faces need the full image."""
        if self.faces != "none":
            return None
        return max(self.image_size, OPEN_NSFW_SIDE if self.nsfw else 0)

    def __call__(self):
        from vlcurate.pipeline.score.faces import face_detector

        detector = face_detector(self.faces) if self.faces != "none" else None
        if self.nsfw:
            from vlcurate.pipeline.score.nsfw import OpenNsfw

        def work(index: int, sample: dict) -> dict:
            data = image_bytes(sample)
            item, reason = read_sample(index, sample)
            if reason is not None:
                item["facts"] = blank_facts(reason, len(data))
                return item
            image, item["facts"] = decode(data, phash=self.phash, min_side=self.min_side)
            if image is not None:
                item["tokens"] = self.tokenize([item["caption"]])[0]
                item["pixels"] = self.prepare(image)
                item["face_boxes"] = detector.detect(image) if detector else []
                item["nsfw_input"] = OpenNsfw.prepare(image) if self.nsfw else None
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


def collate(items: list[dict]) -> dict:
    """Runs in the worker: the arrays are stacked into one tensor each (one shared-memory
    transfer, one pinned copy) and taken out of the items; ``pixel_rows`` says which items the
    pixels and tokens belong to."""
    pixel_rows = [n for n, i in enumerate(items) if i.get("pixels") is not None]
    nsfw = [items[n]["nsfw_input"] for n in pixel_rows if items[n]["nsfw_input"] is not None]
    batch = {
        "items": items,
        "pixel_rows": pixel_rows,
        "pixels": torch.stack([items[n]["pixels"] for n in pixel_rows]) if pixel_rows else None,
        "tokens": torch.stack([items[n]["tokens"] for n in pixel_rows]) if pixel_rows else None,
        "nsfw_input": np.stack(nsfw) if nsfw and len(nsfw) == len(pixel_rows) else None,
    }
    for item in items:
        for key in ("pixels", "tokens", "nsfw_input"):
            item.pop(key, None)
    return batch


def loader(dataset, workers: int, device: str, batch_size: int):
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=device.startswith("cuda"),
    )
