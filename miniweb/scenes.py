"""Training and evaluation shards of mini-web scenes: the shape pictures of the mini web, drawn
straight into img2dataset-style WebDataset shards, without pages or HTTP.

The mini web itself holds a few hundred images, too few to train a CLIP; these shards come from
the same generator (:func:`vlcurate.miniweb.shapes.random_scene`), so a CLIP trained on them
knows the mini web's pictures and captions. Another ``seed`` gives held-out pairs.

Each sample is ``KEY.jpg`` (sides of ``min_side``..``2 * min_side`` px, aspect ratios as on the
mini web), ``KEY.txt`` (the exact caption) and ``KEY.json``: ``caption``, the scene's truth
(``shapes``, ``background``, ``relation``), and two label fields for zero-shot evaluation,
``kind`` and ``color`` (of the first group of shapes).
"""

import io
import random
import tarfile
from pathlib import Path

from vlcurate.miniweb import images, shapes
from vlcurate.pipeline.storage import atomic_open

LABELS = {"kind": shapes.KINDS, "color": shapes.SHAPE_COLORS}


def scene_sample(rng: random.Random, min_side: int) -> tuple[bytes, str, dict]:
    """One random scene as (JPEG bytes, caption, json fields)."""
    size = (rng.randint(min_side, 2 * min_side), rng.randint(min_side, 2 * min_side))
    scene = shapes.random_scene(rng, size=size)
    text = shapes.caption(scene)
    first = scene.groups[0]
    meta = {"caption": text, **scene.truth(), "kind": first.kind, "color": first.color}
    return images.encode(shapes.draw(scene), "jpeg"), text, meta


def write_scene_shards(
    folder, n: int, seed: int = 0, per_shard: int = 1000, min_side: int = 96
) -> list[str]:
    """Write ``n`` scenes as ``folder/NNNNN.tar`` (each written whole, then renamed) and return
    the shard paths. The same arguments give the same bytes."""
    rng = random.Random(seed)
    return write_shards(folder, (scene_sample(rng, min_side) for _ in range(n)), n, per_shard)


def write_shards(folder, samples, n: int, per_shard: int = 1000) -> list[str]:
    """Write ``n`` samples of ``(jpeg, caption, json fields)`` as ``folder/NNNNN.tar``, keys
    ``SSSSSIIII`` as img2dataset names them (each tar written whole, then renamed)."""
    import json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    samples = iter(samples)
    paths = []
    for shard, first in enumerate(range(0, n, per_shard)):
        path = folder / f"{shard:05d}.tar"
        with atomic_open(str(path), "wb") as f, tarfile.open(fileobj=f, mode="w") as tar:
            for i in range(first, min(n, first + per_shard)):
                data, text, meta = next(samples)
                key = f"{shard:05d}{i - first:04d}"
                meta["key"] = key
                for ext, payload in (
                    ("jpg", data),
                    ("txt", text.encode()),
                    ("json", json.dumps(meta).encode()),
                ):
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size, info.mtime, info.mode = len(payload), 0, 0o644
                    tar.addfile(info, io.BytesIO(payload))
        paths.append(str(path))
    return paths


def write_shape_classes(
    folder,
    per_class: int = 20,
    seed: int = 0,
    color: str = "white",
    background: str = "black",
    size: int = 128,
) -> list[str]:
    """One subfolder per shape kind (``circle/``, ``square/``, ...), each with ``per_class``
    pictures of one shape of that kind at a random place and size, all in one ``color`` on one
    ``background``: classes that differ by shape alone, for few-shot episodes
    (:func:`vlcurate.pipeline.icl.sources.folder_source`). Returns the class folders."""
    folder = Path(folder)
    rng = random.Random(seed)
    out = []
    for kind in shapes.KINDS:
        (folder / kind).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            scene = shapes.make_scene(rng, [(kind, color, 1)], background, size=(size, size))
            with atomic_open(str(folder / kind / f"{i:04d}.png"), "wb") as f:
                shapes.draw(scene).save(f, format="PNG")
        out.append(str(folder / kind))
    return out
