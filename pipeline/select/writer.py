"""Final shards: the kept samples resharded to the recipe's size, in img2dataset's layout
(``NNNNN.tar`` with ``key.jpg``, ``key.txt``, ``key.json``; ``NNNNN.parquet`` with the json
rows), each written under a temporary name and renamed into place; the stage runner marks the
shard done (:mod:`vlcurate.pipeline.stage`)."""

import hashlib
import io
import json
import tarfile

import pyarrow as pa
from PIL import ImageFilter

from vlcurate.pipeline import storage
from vlcurate.pipeline.score import shards as shard_io
from vlcurate.pipeline.score.images import decode

MTIME = 1_700_000_000  # fixed, so the same selection always gives byte-identical shards
INTERNAL = ("emb_row", "rank", "reason", "duplicate_of", "final_shard", "final_key", "index")


def write_shard(name: str, rows: list[dict], shards: str, output: str, faces: str) -> dict:
    """Write final shard ``name`` from its rows (in order): ``NNNNN.tar``, then
    ``NNNNN.parquet``, each under a temporary name renamed when whole. Returns what the
    manifest lists of it: name, samples, bytes, sha256, faces_blurred."""
    images = _source_images(rows, shards)
    buffer, blurred, records = io.BytesIO(), 0, []
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for row in rows:
            data, ext = images[(row["shard"], row["index"])]
            record = sample_json(row)
            if faces == "blur" and row.get("face_count"):
                data, ext = blur_faces(data, json.loads(row["face_boxes"] or "[]"))
                record["faces_blurred"] = row["face_count"]
                blurred += 1
            key = row["final_key"]
            _add(tar, f"{key}.{ext}", data)
            _add(tar, f"{key}.txt", (row["caption"] or "").encode())
            _add(tar, f"{key}.json", json.dumps(record, ensure_ascii=False).encode())
            records.append(record)
    data = buffer.getvalue()
    with storage.atomic_open(storage.join(output, f"{name}.tar")) as f:
        f.write(data)
    table = pa.Table.from_pylist(records)
    with storage.parquet_writer(storage.join(output, f"{name}.parquet"), table.schema) as w:
        w.write_table(table)
    return {
        "name": name,
        "samples": len(rows),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "faces_blurred": blurred,
    }


def sample_json(row: dict) -> dict:
    """Every score and the provenance, flat, as img2dataset and LAION's parquet columns are:
    ``key`` is the new key, ``source_shard``/``source_key`` where it came from."""
    record = {k: v for k, v in row.items() if k not in INTERNAL and k not in ("shard", "key")}
    record["key"] = row["final_key"]
    record["source_shard"] = row["shard"]
    record["source_key"] = row["key"]
    return record


def blur_faces(data: bytes, boxes: list) -> tuple[bytes, str]:
    """The image with each face box Gaussian-blurred (DataComp blurs faces in its pool), as
    JPEG. Boxes are in pixels of the image as decoded (EXIF orientation applied)."""
    image, _ = decode(data, phash=False)
    if image is None:
        return data, "jpg"
    for x, y, w, h in boxes:
        pad = int(0.1 * max(w, h))
        box = (
            max(0, x - pad),
            max(0, y - pad),
            min(image.width, x + w + pad),
            min(image.height, y + h + pad),
        )
        if box[2] <= box[0] or box[3] <= box[1]:
            continue
        region = image.crop(box).filter(ImageFilter.GaussianBlur(radius=max(2, max(w, h) / 6)))
        image.paste(region, box)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=95)
    return out.getvalue(), "jpg"


def _source_images(rows: list[dict], shards: str) -> dict:
    wanted: dict[str, set] = {}
    for row in rows:
        wanted.setdefault(row["shard"], set()).add(row["index"])
    images = {}
    for shard, indices in wanted.items():
        path = storage.join(shards, f"{shard}.tar")
        for index, sample in shard_io.samples(path, indices.__contains__):
            ext = next((e for e in shard_io.IMAGE_EXTENSIONS if sample.get(e)), "jpg")
            images[(shard, index)] = (sample.get(ext, b""), ext)
    lost = [(r["shard"], r["index"]) for r in rows if (r["shard"], r["index"]) not in images]
    if lost:
        raise RuntimeError(f"shard {lost[0][0]} has no sample {lost[0][1]}: shards changed?")
    return images


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), MTIME, 0o644
    tar.addfile(info, io.BytesIO(data))
