"""Labelled images for few-shot episodes: a folder per class, or labelled WebDataset shards.

A source yields items ``{"ref": str, "label": str, "attributes": dict}``; a ``ref`` is a file
path or ``"shard.tar#key"`` and :func:`load_image` opens either. Frozen's released tasks are read
by :mod:`vlcurate.pipeline.icl.frozen_tasks`.
"""

import json
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
SHARD_IMAGES = ("jpg", "jpeg", "png", "webp")  # the image members of a shard sample


def folder_source(path) -> Iterator[dict]:
    """One subfolder per class (``golden_retriever/`` -> label ``"golden retriever"``); every image
    file in it is an item. Folders and files are visited in sorted order."""
    for folder in sorted(p for p in Path(path).iterdir() if p.is_dir()):
        label = folder.name.replace("_", " ")
        for file in sorted(folder.iterdir()):
            if file.suffix.lower() in IMAGE_EXTENSIONS:
                yield {"ref": str(file), "label": label, "attributes": {}}


def shard_source(shards, label_field: str, attribute_fields: Iterable[str] = ()) -> Iterator[dict]:
    """Items of img2dataset/WebDataset shards: ``KEY.jpg`` + ``KEY.json``; the label is
    ``json[label_field]`` and ``attributes`` holds the ``attribute_fields`` present in the json.
    Samples without an image, a json or the label field are skipped. Refs are ``"{shard}#{key}"``.
    """
    import webdataset as wds

    from vlcurate.pipeline.storage import webdataset_reads_urls

    webdataset_reads_urls()
    urls = [shards] if isinstance(shards, str | Path) else list(shards)
    samples = wds.DataPipeline(
        wds.SimpleShardList([str(u) for u in urls]), wds.tarfile_to_samples()
    )
    fields = tuple(attribute_fields)
    for sample in samples:
        if "json" not in sample or not any(ext in sample for ext in SHARD_IMAGES):
            continue
        meta = json.loads(sample["json"])
        if meta.get(label_field) in (None, ""):
            continue
        yield {
            "ref": f"{sample['__url__']}#{sample['__key__']}",
            "label": str(meta[label_field]),
            "attributes": {f: meta[f] for f in fields if f in meta},
        }


def load_image(ref: str):
    """The PIL image (RGB) of a ref: a file path, or ``"shard.tar#key"`` (``key.jpg``, ``.jpeg``,
    ``.png`` or ``.webp`` inside the tar)."""
    from PIL import Image

    shard, sep, key = ref.rpartition("#")
    if not sep or Path(ref).exists():
        with Image.open(ref) as image:
            return image.convert("RGB")
    with tarfile.open(shard) as tar:
        names = set(tar.getnames())
        for ext in SHARD_IMAGES:
            if f"{key}.{ext}" in names:
                with Image.open(tar.extractfile(f"{key}.{ext}")) as image:
                    return image.convert("RGB")
    raise FileNotFoundError(f"no image for key {key!r} in {shard}")
