"""Images (and captions) through a CLIP: embeddings of WebDataset shards or of an image folder.

``scorer`` is a :class:`vlcurate.pipeline.score.clip.ClipScorer` (an open_clip model in eval mode,
its eval transform and tokenizer). Shards are img2dataset-style (``KEY.jpg|png|jpeg|webp``,
``KEY.txt``, optional ``KEY.json``; a brace pattern such as ``DIR/{00000..00003}.tar`` or a
list); a folder has one subfolder per class. Embeddings are L2-normalised float32, so a dot
product is a cosine similarity. Images that do not decode are counted and skipped, never fatal.
"""

import io
import json
from pathlib import Path

import numpy as np
import torch
import webdataset as wds
from PIL import Image
from tqdm import tqdm

from vlcurate.pipeline.storage import expand_shards, webdataset_reads_urls

webdataset_reads_urls()  # shards in a bucket

IMAGE_EXTS = ("jpg", "png", "jpeg", "webp")  # the image members of a shard sample
FOLDER_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"}  # image files in a folder


class _DecodeSample:
    """Raw shard sample -> {key, image (3, H, W) float or None, caption, label, error}.
    Runs in the DataLoader workers; failures are reported, not raised."""

    def __init__(self, preprocess, label_field: str | None, with_text: bool):
        self.preprocess, self.label_field, self.with_text = preprocess, label_field, with_text

    def __call__(self, sample: dict) -> dict:
        out = {
            "key": sample["__key__"],
            "image": None,
            "caption": None,
            "label": None,
            "error": None,
        }
        ext = next((e for e in IMAGE_EXTS if e in sample), None)
        try:
            if ext is None:
                raise ValueError("no image member")
            if self.with_text:
                out["caption"] = sample["txt"].decode("utf-8")
            if self.label_field is not None:
                out["label"] = _label_of(sample, self.label_field)
            with Image.open(io.BytesIO(sample[ext])) as image:
                out["image"] = self.preprocess(image.convert("RGB"))
        except KeyError as e:
            out["error"] = f"missing {e.args[0]}"
        except Exception as e:  # an undecodable image or caption: counted by the caller
            out["error"] = f"{type(e).__name__}: {e}"
        return out


class _MissingLabel:
    """Sentinel label of a sample without the asked field: an error of the input, raised in
    the main process (:func:`_check_labels`), not a skipped image."""


def _label_of(sample: dict, field: str) -> str:
    if "json" not in sample:
        return _MissingLabel
    meta = json.loads(sample["json"])
    if field not in meta:
        return _MissingLabel
    return str(meta[field])


def _collate(samples: list[dict]) -> dict:
    """Decoded samples -> a batch of the good ones, stacked, plus the failures."""
    good = [s for s in samples if s["error"] is None]
    return {
        "images": torch.stack([s["image"] for s in good]) if good else None,  # (B, 3, H, W)
        "keys": [s["key"] for s in good],
        "captions": [s["caption"] for s in good],
        "labels": [s["label"] for s in good],
        "errors": [(s["key"], s["error"]) for s in samples if s["error"] is not None],
    }


@torch.inference_mode()
def _encode_images(scorer, images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) preprocessed images -> (B, D) L2-normalised float32."""
    images = images.to(scorer.device)
    cuda = str(scorer.device).startswith("cuda")
    with torch.autocast("cuda", dtype=torch.float16, enabled=cuda):
        emb = scorer.net.encode_image(images)  # (B, D)
    return torch.nn.functional.normalize(emb.float(), dim=-1).cpu().numpy()


def _encode_batches(scorer, loader, with_text: bool, progress: bool, total=None) -> dict:
    """Run the DataLoader's batches through the model; gather the embeddings and fields."""
    image_emb, text_emb, out = [], [], {"keys": [], "captions": [], "labels": []}
    skipped, errors = 0, []
    for batch in tqdm(loader, total=total, disable=not progress, unit="batch"):
        skipped += len(batch["errors"])
        errors += batch["errors"][: max(0, 10 - len(errors))]
        if batch["images"] is None:
            continue
        image_emb.append(_encode_images(scorer, batch["images"]))  # (B, D)
        if with_text:
            text_emb.append(scorer.encode_texts(batch["captions"]).cpu().numpy())  # (B, D)
        for name in out:
            out[name] += batch[name]
    dim = scorer.dim
    result = {
        "image_emb": np.concatenate(image_emb) if image_emb else np.zeros((0, dim), np.float32),
        **out,
        "n": len(out["keys"]),
        "skipped": skipped,
        "skipped_examples": errors,  # (key, why) of the first 10 skipped
    }
    if with_text:
        empty = np.zeros((0, dim), np.float32)
        result["text_emb"] = np.concatenate(text_emb) if text_emb else empty
    return result


def encode_shards(
    scorer,
    shards: str | list[str],
    batch_size: int = 256,
    label_field: str | None = None,
    progress: bool = False,
    with_text: bool = True,
    workers: int = 2,
) -> dict:
    """Stream the shards through the model. Returns ``image_emb`` (N, D) and ``text_emb``
    (N, D) (float32, L2-normalised, row i = sample i; no ``text_emb`` with ``with_text=False``),
    ``captions``, ``keys``, ``labels`` (the json's ``label_field`` as a string per sample, or
    None per sample when not asked), ``n``, and ``skipped``: samples whose image (or caption)
    does not decode, counted, not fatal. A sample without ``label_field`` is an error
    (ValueError), as is an empty set. With several workers, samples come in the order the
    workers deliver their batches (deterministic for the same shards and workers)."""
    urls = expand_shards(shards)
    workers = min(workers, len(urls))
    pipeline = wds.DataPipeline(
        wds.SimpleShardList(urls),
        wds.split_by_worker,
        wds.tarfile_to_samples(),
        wds.map(_DecodeSample(scorer.preprocess, label_field, with_text)),
    )
    loader = torch.utils.data.DataLoader(
        pipeline, batch_size=batch_size, num_workers=workers, collate_fn=_collate
    )
    result = _encode_batches(scorer, loader, with_text, progress)
    _check_labels(result, label_field, shards)
    if result["n"] == 0:
        raise ValueError(f"no decodable samples in {shards} ({result['skipped']} skipped)")
    return result


def _check_labels(result: dict, label_field: str | None, where) -> None:
    if label_field is None:
        return
    missing = [
        k
        for k, label in zip(result["keys"], result["labels"], strict=True)
        if label is _MissingLabel
    ]
    if missing:
        raise ValueError(
            f"{len(missing)} of {result['n']} samples in {where} have no {label_field!r} "
            f"field in their .json (first: {missing[0]})"
        )


def folder_source(path) -> list[tuple[str, str]]:
    """A folder with one subfolder per class -> sorted (image file, class name) pairs; the
    class name is the subfolder's name with ``_`` -> space (``fire_truck`` -> ``fire truck``).
    Raises ValueError for a missing folder, no subfolders, or no images at all."""
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"{path} is not a folder")
    classes = sorted(d for d in root.iterdir() if d.is_dir())
    if not classes:
        raise ValueError(f"{path} has no class subfolders (expected {path}/CLASS/IMAGE)")
    items = [
        (str(f), d.name.replace("_", " "))
        for d in classes
        for f in sorted(d.iterdir())
        if f.is_file() and f.suffix.lower() in FOLDER_EXTS
    ]
    if not items:
        raise ValueError(f"no images ({', '.join(sorted(FOLDER_EXTS))}) in {path}/*/")
    return items


class _FolderImages(torch.utils.data.Dataset):
    def __init__(self, items: list[tuple[str, str]], preprocess):
        self.items, self.preprocess = items, preprocess

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        path, label = self.items[i]
        out = {"key": path, "image": None, "caption": None, "label": label, "error": None}
        try:
            with Image.open(path) as image:
                out["image"] = self.preprocess(image.convert("RGB"))
        except Exception as e:  # undecodable: counted by the caller
            out["error"] = f"{type(e).__name__}: {e}"
        return out


def encode_folder(scorer, items, batch_size=256, progress=False, workers=2) -> dict:
    """:func:`folder_source` pairs -> the layout of :func:`encode_shards` (images only)."""
    loader = torch.utils.data.DataLoader(
        _FolderImages(items, scorer.preprocess),
        batch_size=batch_size,
        num_workers=min(workers, -(-len(items) // batch_size)),
        collate_fn=_collate,
    )
    total = -(-len(items) // batch_size)
    result = _encode_batches(scorer, loader, with_text=False, progress=progress, total=total)
    if result["n"] == 0:
        raise ValueError(f"none of the {len(items)} images decodes")
    return result
