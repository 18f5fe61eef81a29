"""Interleaved documents as WebDataset shards, one sample per document, and their loader.

A sample is ``KEY.json`` (the mmc4-style record of
:func:`vlcurate.pipeline.docs.document.assign_document` plus the provenance passed in: ``doc_id``,
``page_url``, ``warc_path``, ``warc_record_id``) and the kept images as ``KEY.0.jpg``,
``KEY.1.jpg``, ... in ``image_info`` order (``image_info[j] ["image_name"]`` is ``"{j}.jpg"``).
WebDataset splits a member's name at the first dot of its base name, so these are one sample with
the extensions ``json``, ``0.jpg``, ``1.jpg`` (tested by reading back). Keys are ``{shard
stem}-{n:06d}``, free of dots, whatever the ``doc_id``.

Interleaving convention (mmc4 / OBELICS, as OpenFlamingo reads mmc4): an image comes immediately
*before* the sentence it is matched to; images matched to the same sentence keep their
``image_info`` (page) order; a sentence with no image stays plain text. :func:`interleaved` gives
that sequence of strings and PIL images; :class:`InterleavedDataset` flattens it into one text
with one ``image_token`` per image (pieces joined by single spaces: ``"<image> A red door. It
opens."``) and stacks the images in the order of their placeholders.
"""

import io
import json
import posixpath
import re

import webdataset as wds
from PIL import Image
from torch.utils.data import IterableDataset

from vlcurate.pipeline.score.images import to_rgb
from vlcurate.pipeline.storage import atomic_open, webdataset_reads_urls

webdataset_reads_urls()  # shards in a bucket

__all__ = ["InterleavedDataset", "interleaved", "order", "write_doc_shard"]

PROVENANCE = ("doc_id", "page_url", "warc_path", "warc_record_id")
JPEG_QUALITY = 95


def _jpeg(image) -> bytes:
    """Encoded JPEG bytes: JPEG bytes as given, anything else (PIL, other encoded bytes)
    converted to RGB and encoded."""
    if isinstance(image, dict):
        image = image.get("image")
    if isinstance(image, (bytes, bytearray)):
        if bytes(image[:3]) == b"\xff\xd8\xff":
            return bytes(image)
        image = Image.open(io.BytesIO(image))
    if not isinstance(image, Image.Image):
        raise ValueError(f"not an image: {type(image).__name__}")
    buf = io.BytesIO()
    to_rgb(image).save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def write_doc_shard(path: str, docs) -> int:
    """Write ``docs`` to the tar ``path`` (any fsspec URL), which appears only when complete
    (temporary name, then rename: a write that raises or is killed leaves no ``.tar``).
    Returns the number of documents written.

    Each doc is a dict: ``record`` (from ``assign_document``), ``images`` (the page's images by
    position, as given to ``assign_document``: dicts with ``image``, PIL images, or encoded
    bytes; ``image_info[j]["position"]`` picks each kept one) and the provenance fields
    ``doc_id``, ``page_url``, ``warc_path``, ``warc_record_id`` (None when missing)."""
    stem = re.sub(r"[^A-Za-z0-9_-]", "_", posixpath.basename(path).split(".")[0]) or "shard"
    n = 0
    with atomic_open(path, "wb") as f:
        writer = wds.TarWriter(f)
        try:
            for doc in docs:
                record = dict(doc["record"])
                record.update({k: doc.get(k) for k in PROVENANCE})
                sample = {"__key__": f"{stem}-{n:06d}"}
                for j, info in enumerate(record.get("image_info") or []):
                    sample[f"{j}.jpg"] = _jpeg(doc["images"][info["position"]])
                sample["json"] = json.dumps(record, ensure_ascii=False).encode("utf-8")
                writer.write(sample)
                n += 1
        finally:  # also on failure, so the tar stream never writes to a closed temporary
            writer.close()
    return n


def order(record: dict) -> list[tuple[str, int]]:
    """The document as ``("image", j)`` (j: index in ``image_info``) and ``("text", s)`` (s:
    index in ``text_list``) steps: each sentence preceded by its images."""
    by_sentence: dict[int, list[int]] = {}
    for j, info in enumerate(record.get("image_info") or []):
        by_sentence.setdefault(int(info["matched_text_index"]), []).append(j)
    steps: list[tuple[str, int]] = []
    for s in range(len(record.get("text_list") or [])):
        steps.extend(("image", j) for j in by_sentence.get(s, ()))
        steps.append(("text", s))
    return steps


def _record(sample: dict) -> dict:
    raw = sample["json"]
    return json.loads(raw) if isinstance(raw, (bytes, bytearray, str)) else raw


def _image(sample: dict, j: int) -> Image.Image:
    value = sample[f"{j}.jpg"]
    if isinstance(value, Image.Image):
        return value
    return to_rgb(Image.open(io.BytesIO(value)))


def interleaved(sample: dict) -> list:
    """The ordered sequence of sentences (str) and images (PIL, RGB) of one sample as read by
    ``webdataset.WebDataset`` (``json`` and ``{j}.jpg`` as bytes, or already decoded)."""
    record = _record(sample)
    text = record.get("text_list") or []
    return [text[i] if kind == "text" else _image(sample, i) for kind, i in order(record)]


class InterleavedDataset(IterableDataset):
    """Documents from interleaved shards (a list of URLs or a brace pattern), each as
    ``{"text", "images", "doc_id", "image_positions", "image_info_index", "record"}``:
    ``text`` has one ``image_token`` per image, before its sentence; ``images`` is
    ``(n_images, 3, H, W)`` from ``image_transform`` (a PIL -> (3, H, W) tensor callable), in
    placeholder order; ``image_positions[k]`` is the character offset of the k-th placeholder in
    ``text`` and ``image_info_index[k]`` that image's index in ``image_info``; with a
    ``tokenizer`` (any callable on a string) its output is under ``tokens``. Shards are split
    across DataLoader workers and nodes by webdataset."""

    def __init__(self, shards, image_transform, tokenizer=None, image_token: str = "<image>"):
        super().__init__()
        self.shards = shards
        self.image_transform = image_transform
        self.tokenizer = tokenizer
        self.image_token = image_token
        self._empty = None  # (0, 3, H, W) for documents without images

    def _stack(self, tensors: list):
        import torch

        if tensors:
            return torch.stack(tensors)
        if self._empty is None:  # the transform's output shape, from a blank image
            probe = self.image_transform(Image.new("RGB", (224, 224)))
            self._empty = torch.zeros((0, *probe.shape), dtype=probe.dtype)
        return self._empty

    def document(self, sample: dict) -> dict:
        record = _record(sample)
        sentences = record.get("text_list") or []
        pieces, positions, index, tensors, offset = [], [], [], [], 0
        for kind, i in order(record):
            if pieces:
                offset += 1  # the joining space
            if kind == "image":
                positions.append(offset)
                index.append(i)
                tensors.append(self.image_transform(_image(sample, i)))
                piece = self.image_token
            else:
                piece = sentences[i]
            pieces.append(piece)
            offset += len(piece)
        out = {
            "text": " ".join(pieces),
            "images": self._stack(tensors),
            "doc_id": record.get("doc_id"),
            "image_positions": positions,
            "image_info_index": index,
            "record": record,
        }
        if self.tokenizer is not None:
            out["tokens"] = self.tokenizer(out["text"])
        return out

    def __iter__(self):
        dataset = wds.WebDataset(self.shards, shardshuffle=False, nodesplitter=wds.split_by_node)
        for sample in dataset:
            yield self.document(sample)
