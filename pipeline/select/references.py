"""Images from outside the pool that the selection compares the pool with: the image-based
filter's reference set (``select.image_filter.reference``) and the eval sets to decontaminate
against (``select.decontaminate``).

A set is given as paths, each a file, a brace pattern (``evals/{00000..00003}.tar``), a glob or a
folder (its ``*.tar`` and ``*.npy``, and clip-retrieval's ``img_emb/*.npy``):

- WebDataset shards (``.tar``): each image is framed as the pool's download framed its images
  (img2dataset's ``Resizer`` with the settings the download's done markers record: a pool
  downloaded in ``border`` mode holds every picture padded to a square, which moves a pHash
  by 20 bits or more), then read the way the score stage read the pool's
  (:mod:`vlcurate.pipeline.score.images`, :mod:`~vlcurate.pipeline.score.pixels`, the batch side
  of the same models), embedded with the same CLIP (the model and weights its done markers name,
  :class:`~vlcurate.pipeline.score.clip.ClipScorer`) and hashed with the same pHash
  (:mod:`vlcurate.pipeline.score.phash`), so a copy of a pool image lands where that image does;
- embeddings (``.npy``, clip-retrieval's layout: one float16 or float32 row per image, made by
  the same CLIP): no pixels, so no pHash.

Every row is L2-normalised, as the pool's embeddings are. A missing path, a file of another kind
or embeddings of another width are an :class:`~vlcurate.pipeline.storage.InputError`, raised
before any output is written.
"""

import hashlib
from dataclasses import dataclass

import fsspec
import numpy as np

from vlcurate.pipeline import storage
from vlcurate.pipeline.storage import InputError

SUFFIXES = (".tar", ".npy")
BATCH = 64


@dataclass
class References:
    """``embeddings`` float32 (n, d), L2-normalised; ``phash`` (hex, or None: no pixels) and
    ``names`` (``PATH:KEY`` for a shard's sample, ``PATH#ROW`` for an embedding row, the file's
    full path: two eval sets may both hold a ``00000.tar``) per row;
    ``undecoded``: images of the shards that did not decode (not in the set)."""

    embeddings: np.ndarray
    phash: list
    names: list
    undecoded: int = 0

    def __len__(self) -> int:
        return len(self.names)


def expand(paths: list[str], field: str = "reference or eval path") -> list[str]:
    """The files ``paths`` name, sorted and de-duplicated; a path that names none, or a file
    that is neither a shard nor embeddings, is refused in one line naming ``field`` (the
    recipe's key, ``select.image_filter.reference`` or ``select.decontaminate.eval``)."""
    found: list[str] = []
    for spec in paths:
        fs, path = fsspec.core.url_to_fs(spec)
        if "{" in spec:
            matches = storage.expand_shards(spec)
        elif any(c in path for c in "*?["):
            matches = sorted(fs.unstrip_protocol(m) for m in fs.glob(path) if not fs.isdir(m))
        elif fs.isdir(path):
            patterns = (f"{path}/*.tar", f"{path}/*.npy", f"{path}/img_emb/*.npy")
            matches = sorted(fs.unstrip_protocol(m) for p in patterns for m in fs.glob(p))
        else:
            matches = [spec]
        if not matches:
            raise InputError(f"{field}: {spec} matched no shard (.tar) or embeddings (.npy)")
        for match in matches:
            if not match.endswith(SUFFIXES):
                raise InputError(
                    f"{field}: {match} is not a WebDataset shard (.tar) or embeddings (.npy)"
                )
            if not storage.exists(match):
                raise InputError(f"{field}: not found: {match}")
            found.append(storage.absolute(match) if "://" not in match else match)
    return sorted(set(found))


def digest(paths: list[str], field: str = "reference or eval path") -> str:
    """A digest of the files ``paths`` name (path, size, modification time): other reference
    or eval files rebuild the selection."""
    h = hashlib.sha256()
    for file in expand(paths, field):
        fs, path = fsspec.core.url_to_fs(file)
        info = fs.info(path)
        h.update(
            f"{file}\n{info.get('size')}\n{info.get('mtime', info.get('LastModified'))}\n".encode()
        )
    return h.hexdigest()[:16]


def load(
    paths: list[str], settings: dict, dim: int, framing: dict | None = None, field: str = "images"
) -> References:
    """The images of ``paths``: shards framed as the download (``framing``: its done markers'
    settings; None: as they are) and embedded as the score stage (``settings``: its done
    markers' settings) did the pool's; embeddings read as they are, ``dim`` wide."""
    files = expand(paths, field)
    parts = [_embeddings_file(f, dim, field) for f in files if f.endswith(".npy")]
    shards = [f for f in files if f.endswith(".tar")]
    if shards:
        parts.append(embed_shards(shards, settings, framing))
    for part in parts:
        if len(part) and part.embeddings.shape[1] != dim:
            raise InputError(
                f"{field}: embeddings are {part.embeddings.shape[1]} wide, the pool's "
                f"{dim}: made by another CLIP than the scores' ({settings.get('model')})"
            )
    return References(
        np.concatenate([p.embeddings for p in parts]) if parts else np.zeros((0, dim), "f4"),
        [h for p in parts for h in p.phash],
        [n for p in parts for n in p.names],
        sum(p.undecoded for p in parts),
    )


def normalised(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.ascontiguousarray(rows / np.where(norms > 0, norms, 1))


def _embeddings_file(file: str, dim: int, field: str) -> References:
    with fsspec.open(file, "rb") as f:
        try:
            rows = np.load(f, allow_pickle=False)
        except ValueError as e:
            raise InputError(f"{field}: {file} is not a .npy array of embeddings ({e})") from e
    if rows.ndim != 2 or rows.dtype not in (np.float16, np.float32):
        raise InputError(
            f"{field}: {file}: embeddings must be float16 or float32 rows, not {rows.dtype}"
        )
    if rows.shape[1] != dim:
        raise InputError(
            f"{field}: {file}: embeddings are {rows.shape[1]} wide, the pool's {dim}: "
            "made by another CLIP"
        )
    return References(
        normalised(rows), [None] * len(rows), [f"{file}#{i}" for i in range(len(rows))]
    )


def framer(framing: dict | None):
    """``bytes -> bytes or None``: img2dataset's resize as the download ran it (None: as is)."""
    if not framing:
        return lambda data: data
    import io

    from vlcurate.pipeline.download.config import DownloadConfig
    from vlcurate.pipeline.download.context import resizer

    keys = ("image_size", "resize_mode", "resize_only_if_bigger", "encode_quality")
    resize = resizer(DownloadConfig(**{k: framing[k] for k in keys if k in framing}))

    def frame(data: bytes) -> bytes | None:
        image, *_, error = resize(io.BytesIO(data))
        return None if error is not None else image

    return frame


def embed_shards(shards: list[str], settings: dict, framing: dict | None = None) -> References:
    """Each image of ``shards`` framed as the download did (:func:`framer`), then through the
    score stage's reading path and models: decoded (large JPEGs at a reduced scale unless a CPU
    face detector wanted the full image), its center square at the batch side the scoring used,
    CLIP's image embedding, and the pHash of the decoded image."""
    import torch

    from vlcurate.pipeline.devices import resolve_device
    from vlcurate.pipeline.score.clip import ClipScorer
    from vlcurate.pipeline.score.images import decode_pixels
    from vlcurate.pipeline.score.nsfw import RESIZE as OPEN_NSFW_SIDE
    from vlcurate.pipeline.score.phash import hashes, thumbnail
    from vlcurate.pipeline.score.pixels import square
    from vlcurate.pipeline.score.shards import image_bytes, samples

    clip = ClipScorer(settings.get("model"), settings.get("pretrained"), resolve_device("auto"))
    side = max(clip.image_size, OPEN_NSFW_SIDE if settings.get("nsfw") == "open-nsfw" else 0)
    full = settings.get("faces") not in (None, "none", "mtcnn-torch")  # a CPU detector's decode
    frame = framer(framing)
    out = References(np.zeros((0, clip.dim), np.float32), [], [])
    batch: list = []

    def flush() -> None:
        pixels = torch.from_numpy(np.stack([b[1] for b in batch]))
        found = clip.score_batch(pixels, [b[3] for b in batch])
        thumbs = torch.from_numpy(np.stack([b[2] for b in batch]))
        out.embeddings = np.concatenate([out.embeddings, found["image_emb"].astype(np.float32)])
        out.phash.extend(hashes(thumbs))
        out.names.extend(b[0] for b in batch)
        batch.clear()

    for shard in shards:
        for _, sample in samples(shard):
            data = frame(image_bytes(sample))
            rgb, _ = decode_pixels(data, None if full else side) if data else (None, None)
            if rgb is None:
                out.undecoded += 1
                continue
            caption = (sample.get("txt") or b"").decode("utf-8", "replace")
            pixels = square(rgb, side, squash=clip.squash)
            batch.append((f"{shard}:{sample['__key__']}", pixels, thumbnail(rgb), caption))
            if len(batch) == BATCH:
                flush()
    if batch:
        flush()
    out.embeddings = normalised(out.embeddings)
    return out


def images_of(names: list[str]) -> dict[str, bytes]:
    """``{name: image bytes}`` of the rows ``names`` names that come from shards (``PATH:KEY``;
    an embedding row has no picture), each shard read once."""
    from vlcurate.pipeline.score.shards import image_bytes, samples

    wanted: dict[str, set] = {}
    for name in names:
        file, sep, key = name.rpartition(":")
        if sep and file.endswith(".tar"):
            wanted.setdefault(file, set()).add(key)
    found = {}
    for file, keys in wanted.items():
        for _, sample in samples(file):
            if sample["__key__"] in keys:
                found[f"{file}:{sample['__key__']}"] = image_bytes(sample)
    return found
