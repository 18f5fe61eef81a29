"""One scored shard's files: ``scores/NNNNN.parquet`` (one row per sample, decodable or not,
with its status) and clip-retrieval's layout for the embedded samples, ``img_emb/NNNNN.npy``
and ``text_emb/NNNNN.npy`` (float16, L2-normalised) with ``metadata/NNNNN.parquet`` in the same
order; each written under a temporary name and renamed when whole."""

import io
import json
from collections import Counter

import numpy as np
import pyarrow as pa

from vlcurate.pipeline import storage
from vlcurate.pipeline.score.config import OCR, ScoreConfig
from vlcurate.pipeline.score.images import DECODED
from vlcurate.pipeline.score.inputs import shard_name
from vlcurate.pipeline.score.passes import OcrPass, loader
from vlcurate.pipeline.score.shards import ShardStream
from vlcurate.pipeline.stats import StageStats
from vlcurate.schemas.score import METADATA_SCHEMA, scores_schema

STAGE = "score"
FOLDERS = ("scores", "img_emb", "text_emb", "metadata")


def row(item: dict, column: str, values: dict, scorers) -> dict:
    """The sample's row of ``scores/``; ``values``: its scores (none when not decoded)."""
    facts, meta = item["facts"], item["meta"]
    faces = scorers.face_model is not None
    return {
        "index": item["index"],
        "key": item["key"],
        "uid": meta.get("uid"),
        "url": meta.get("url"),
        "caption": item["caption"],
        **facts,
        "face_count": len(item["face_boxes"]) if faces else None,
        "face_boxes": json.dumps(item["face_boxes"]) if faces else None,
        "face_model": scorers.face_model,
        column: values.get(column),
        "nsfw_p": values.get("nsfw_p"),
        "nsfw_model": scorers.nsfw_model,
        "watermark_p": values.get("watermark_p"),
        "watermark_model": scorers.watermark_model,
        "watermark_text": None,
    }


def finish_shard(gathered, output: str, config: ScoreConfig, scorers) -> StageStats:
    """Order the shard's rows (the workers interleave them), OCR (if asked), write its files;
    returns its stats (the runner writes the done marker)."""
    clip = scorers.clip
    if len(gathered.rows) != gathered.count:
        raise RuntimeError(f"{gathered.path}: {gathered.count - len(gathered.rows)} samples lost")
    order = np.argsort([r["index"] for r in gathered.rows], kind="stable")
    rows = [gathered.rows[i] for i in order]
    stats = StageStats(STAGE)
    if config.watermark == OCR:
        ocr_pass(gathered.path, rows, clip.column, config, stats)
    emb_order = np.argsort([e["index"] for e in gathered.embedded], kind="stable")
    img = np.zeros((0, clip.dim), np.float16)
    txt = np.zeros((0, clip.dim), np.float16)
    if len(emb_order):
        img = np.stack(gathered.image_emb)[emb_order].astype(np.float16)
        txt = np.stack(gathered.text_emb)[emb_order].astype(np.float16)
    metadata = [gathered.embedded[i] for i in emb_order]
    write_files(output, shard_name(gathered.path), rows, clip.column, (img, txt, metadata))
    for status, n in Counter(r["status"] for r in rows).items():
        if status == DECODED:
            stats.main.keep(n)
        else:
            stats.main.drop(status, n)
    stats.extra["faces"] += sum(r["face_count"] or 0 for r in rows)
    return stats


def ocr_pass(shard: str, rows: list[dict], column: str, config: ScoreConfig, stats) -> None:
    """Fill ``watermark_p`` (and the matched text) for the decoded rows OCR is spent on: all,
    or those with a CLIP similarity of at least ``watermark_min_clip``."""
    wanted = {
        r["index"]
        for r in rows
        if r["status"] == DECODED
        and (config.watermark_min_clip is None or r[column] >= config.watermark_min_clip)
    }
    by_index = {r["index"]: r for r in rows}
    if wanted:
        batch_size = max(1, min(16, config.batch_size))
        dataset = ShardStream([shard], OcrPass(), [wanted])
        for batch in loader(dataset, config.workers, "cpu", batch_size):
            for item in batch:
                if "end" in item:
                    continue
                found = by_index[item["index"]]
                found["watermark_p"] = item.get("watermark_p")
                found["watermark_text"] = item.get("watermark_text")
    stats.extra["watermark_checked"] += len(wanted)
    stats.extra["watermark_skipped"] += sum(r["status"] == DECODED for r in rows) - len(wanted)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def write_files(output: str, name: str, rows: list[dict], column: str, embedded: tuple) -> None:
    """``embedded``: the image and text embeddings and their metadata rows, in one order."""
    img, txt, metadata = embedded
    for folder, array in (("img_emb", img), ("text_emb", txt)):
        with storage.atomic_open(storage.join(output, folder, f"{name}.npy")) as f:
            f.write(_npy(array))
    tables = (
        ("metadata", pa.Table.from_pylist(metadata, schema=METADATA_SCHEMA)),
        ("scores", pa.Table.from_pylist(rows, schema=scores_schema(column))),
    )
    for folder, table in tables:
        with storage.parquet_writer(
            storage.join(output, folder, f"{name}.parquet"), table.schema
        ) as w:
            w.write_table(table)
