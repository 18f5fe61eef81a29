"""The interleaved road after ``docs filter``: the documents' images downloaded and scored by the
pair stages, then each document's images assigned to its sentences and written as interleaved
shards (mmc4's layout).

1. :func:`image_table`: every image node of the filtered documents as a download candidate
   (``url``, ``caption`` = alt text) carrying ``doc_id`` and ``image_index`` (its place among
   the document's images); ``curate download`` turns it into img2dataset shards and
   ``curate score`` scores them (CLIP image embeddings, NSFW, faces, pHash, size).
2. :func:`assign_documents`: per document, the image rules of the recipe's ``assign:`` section
   (downloaded, decoded, shorter side, aspect ratio, NSFW), then mmc4's assignment of images to
   sentences (:func:`vlcurate.pipeline.docs.assign.assign_document`) from the score stage's image
   embeddings, so only the sentences are encoded; then the document rules (no image left, faces
   for mmc4-ff, mmc4-core). :func:`write_interleaved` writes the kept documents,
   ``docs_per_shard`` to a shard, with their images in order.

Stats: documents in == kept + dropped by reason; images (every image node of the input
documents) in == kept + dropped by reason, an image of a dropped document counted as
``image_in_dropped_doc``.
"""

import glob
import json
import os
from collections import Counter, defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vlcurate.pipeline import storage
from vlcurate.pipeline.docs.assign import AssignConfig, MMC4Core, assign_document
from vlcurate.pipeline.docs.shards import write_doc_shard
from vlcurate.pipeline.score import shards as shard_io
from vlcurate.pipeline.stats import StageStats

STAGE = "docs_assign"
IMAGE_COLUMNS = pa.schema(
    [
        ("url", pa.string()),
        ("caption", pa.string()),
        ("doc_id", pa.string()),
        ("image_index", pa.int32()),
    ]
)
NOT_DOWNLOADED = "not_downloaded"
IMAGE_TOO_SMALL, ASPECT_RATIO, NSFW = "image_too_small", "aspect_ratio", "nsfw"
NO_IMAGES_LEFT, FACES, IN_DROPPED_DOC = "no_images_left", "faces", "image_in_dropped_doc"


def image_table(docs: list[dict]) -> pa.Table:
    """Every image node of ``docs`` as a download candidate."""
    rows = []
    for doc in docs:
        images = [n for n in doc["nodes"] if n["type"] == "image"]
        rows += [
            {
                "url": n["url"],
                "caption": n.get("alt") or "",
                "doc_id": doc["doc_id"],
                "image_index": k,
            }
            for k, n in enumerate(images)
        ]
    return pa.Table.from_pylist(rows, schema=IMAGE_COLUMNS)


def load_images(shards: str, scores: str) -> dict[str, dict[int, dict]]:
    """``doc_id -> image_index -> image``: what img2dataset and the score stage know of each
    downloaded image (``status`` ``ok`` or the score stage's reason, sizes, ``nsfw_p``,
    ``face_count``, ``phash``, ``embedding``, and where its bytes are: ``shard``, ``index``)."""
    found: dict[str, dict[int, dict]] = defaultdict(dict)
    for shard_parquet in sorted(glob.glob(os.path.join(shards, "[0-9]*.parquet"))):
        name = os.path.basename(shard_parquet).removesuffix(".parquet")
        downloaded = {
            r["key"]: r
            for r in pq.read_table(shard_parquet).to_pylist()
            if r["status"] == "success"
        }
        scored = pq.read_table(os.path.join(scores, "scores", f"{name}.parquet")).to_pylist()
        meta = pq.read_table(os.path.join(scores, "metadata", f"{name}.parquet")).to_pylist()
        emb = np.load(os.path.join(scores, "img_emb", f"{name}.npy")).astype(np.float32)
        row_of = {m["key"]: i for i, m in enumerate(meta)}
        for s in scored:
            d = downloaded.get(s["key"])
            if d is None or d.get("doc_id") is None:
                continue
            found[d["doc_id"]][d["image_index"]] = {
                "status": s["status"],
                "url": d["url"],
                "shard": f"{shards}/{name}.tar",
                "index": s["index"],
                "nsfw_p": s.get("nsfw_p"),
                "face_count": s.get("face_count"),
                "faces": s.get("face_boxes"),
                "phash": s.get("phash"),
                "width": d.get("original_width") or s.get("width"),
                "height": d.get("original_height") or s.get("height"),
                "embedding": emb[row_of[s["key"]]] if s["key"] in row_of else None,
            }
    return found


def image_reason(image: dict | None, config: AssignConfig) -> str | None:
    """The recipe's image rules, before any assignment (the kept side is inclusive)."""
    if image is None:
        return NOT_DOWNLOADED
    if image["status"] != "ok" or image["embedding"] is None:
        return image["status"] if image["status"] != "ok" else NOT_DOWNLOADED
    w, h = image["width"] or 0, image["height"] or 0
    if config.min_side is not None and min(w, h) < config.min_side:
        return IMAGE_TOO_SMALL
    if config.max_aspect_ratio is not None and max(w, h) > config.max_aspect_ratio * min(w, h):
        return ASPECT_RATIO
    if config.nsfw_max is not None and (image["nsfw_p"] or 0) > config.nsfw_max:
        return NSFW
    return None


def assign_one(doc: dict, images: dict[int, dict], scorer, config: AssignConfig):
    """(record or None, the document's drop reason, one row per image node of the document:
    ``image_index``, ``reason`` (None: kept), ``matched_sim``, ``sentence``)."""
    texts = [n["text"] for n in doc["nodes"] if n["type"] == "text" and n.get("text")]
    n_images = sum(n["type"] == "image" for n in doc["nodes"])
    rows = [
        {
            "image_index": k,
            "reason": image_reason(images.get(k), config),
            "matched_sim": None,
            "sentence": None,
        }
        for k in range(n_images)
    ]
    live = [row["image_index"] for row in rows if row["reason"] is None]
    items = [
        {
            "embedding": images[k]["embedding"],
            "url": images[k]["url"],
            "phash": images[k]["phash"],
            "faces": images[k]["faces"],
        }
        for k in live
    ]
    record = assign_document(texts, items, scorer, config, url=doc.get("page_url"))
    for d in record["dropped"]:
        rows[live[d["position"]]]["reason"] = d["reason"]
    for info in record["image_info"]:
        info["position"] = live[info["position"]]  # the image's place in the page
        row = rows[info["position"]]
        row["matched_sim"] = info["matched_sim"]
        row["sentence"] = record["text_list"][info["matched_text_index"]]
    reason = record["refused"] or (NO_IMAGES_LEFT if not record["image_info"] else None)
    if reason is None and config.faces == "drop_doc":
        if any(images[i["position"]]["face_count"] for i in record["image_info"]):
            reason = FACES
    if reason is None and config.core:
        reason = MMC4Core().filter(record)[1]
    if reason is not None:
        for info in record["image_info"]:
            rows[info["position"]]["reason"] = IN_DROPPED_DOC
        return None, reason, rows
    return record, None, rows


def assign_documents(docs: list[dict], images: dict, scorer, config: AssignConfig):
    """(kept ``(doc, record)`` pairs in input order, StageStats, one row per image node of every
    document: ``doc_id``, ``image_index``, ``reason``, ``matched_sim``, ``sentence``).

    Each kept record gets mmc4's ``could_have_url_duplicate``: 1 when another of ``docs`` (the
    whole corpus the stage is given) has the same page URL, as when Common Crawl captured a
    page in several snapshots, else 0. It is a field of the document, not of its images."""
    stats = StageStats(STAGE)
    tally = stats.tally("images")
    kept, image_rows = [], []
    page_urls = Counter(doc.get("page_url") for doc in docs if doc.get("page_url"))
    for doc in docs:
        record, reason, rows = assign_one(doc, images.get(doc["doc_id"], {}), scorer, config)
        for row in rows:
            if row["reason"] is None:
                tally.keep()
            else:
                tally.drop(row["reason"])
            image_rows.append({"doc_id": doc["doc_id"], **row})
        if record is None:
            stats.main.drop(reason)
        else:
            stats.main.keep()
            record["could_have_url_duplicate"] = int(page_urls[doc.get("page_url")] > 1)
            kept.append((doc, record))
    return kept, stats, image_rows


def write_interleaved(
    kept: list[tuple[dict, dict]], images: dict, output: str, docs_per_shard: int = 100
) -> list[str]:
    """Write the kept documents as ``output/NNNNN.tar``; a shard already there (from a run
    that was stopped) is kept as it is, since the same inputs give the same shards."""
    paths = []
    for n, start in enumerate(range(0, len(kept), docs_per_shard)):
        path = storage.join(output, f"{n:05d}.tar")
        paths.append(path)
        if storage.exists(path):
            continue
        part = kept[start : start + docs_per_shard]
        wanted = defaultdict(dict)  # shard -> tar index -> (doc_id, image_index)
        for doc, record in part:
            for info in record["image_info"]:
                image = images[doc["doc_id"]][info["position"]]
                wanted[image["shard"]][image["index"]] = (doc["doc_id"], info["position"])
        data = shard_io.images_at(wanted)
        write_doc_shard(
            path,
            [
                {
                    "record": record,
                    "doc_id": doc["doc_id"],
                    "page_url": doc.get("page_url"),
                    "warc_path": doc.get("warc_path"),
                    "warc_record_id": doc.get("warc_record_id"),
                    "images": {
                        i["position"]: data[(doc["doc_id"], i["position"])]
                        for i in record["image_info"]
                    },
                }
                for doc, record in part
            ],
        )
    return paths


def write_stats(output: str, stats: StageStats, **fields) -> dict:
    result = stats.to_dict(**fields)
    storage.write_text_atomic(storage.join(output, "stats.json"), json.dumps(result, indent=2))
    return result
