"""The interleaved road after ``docs filter``: the documents' images downloaded and scored by the
pair stages, then each document's images assigned to its sentences and written as interleaved
shards (mmc4's layout).

1. :func:`image_table`: every image node of the filtered documents as a download candidate
   (``url``, ``caption`` = alt text) carrying ``doc_id`` and ``image_index`` (its place among
   the document's images); ``curate download`` turns it into img2dataset shards and
   ``curate score`` scores them (CLIP image embeddings, NSFW, faces, pHash, size).
2. :func:`assign_documents`: per document, the image rules of the recipe's ``assign:`` section
   (:class:`ImageRules`: downloaded, decoded, shorter side, aspect ratio, NSFW), then mmc4's
   assignment of images to sentences (:func:`vlcurate.pipeline.docs.document.assign_document`)
   from the score stage's image embeddings, so only the sentences are encoded; then the
   document rules (:class:`AssignedDocumentRules`: no image left, faces for mmc4-ff,
   mmc4-core). :func:`write_shard` writes kept documents with their images in order. Both
   kinds of rule have the filter protocol (``judge(batch) -> Verdict``).

Stats: documents in == kept + dropped by reason; images (every image node of the input
documents) in == kept + dropped by reason, an image of a dropped document counted as
``image_in_dropped_doc``.
"""

import io
from collections import Counter, defaultdict

import numpy as np
import pyarrow as pa

from vlcurate.pipeline import storage
from vlcurate.pipeline.docs.assign import (
    CORE_REASONS,
    TOO_MANY_IMAGES,
    TOO_MANY_SENTENCES,
    MMC4Core,
)
from vlcurate.pipeline.docs.config import AssignConfig
from vlcurate.pipeline.docs.document import assign_document
from vlcurate.pipeline.docs.shards import write_doc_shard
from vlcurate.pipeline.score import shards as shard_io
from vlcurate.pipeline.stats import StageStats
from vlcurate.pipeline.verdict import Verdict

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
    for shard_parquet in storage.glob(storage.join(shards, "[0-9]*.parquet")):  # or s3://
        name = shard_parquet.rsplit("/", 1)[-1].removesuffix(".parquet")
        downloaded = {
            r["key"]: r
            for r in storage.read_table(shard_parquet).to_pylist()
            if r["status"] == "success"
        }
        scored = storage.read_table(storage.join(scores, "scores", f"{name}.parquet")).to_pylist()
        meta = storage.read_table(storage.join(scores, "metadata", f"{name}.parquet")).to_pylist()
        emb = storage.read_bytes(storage.join(scores, "img_emb", f"{name}.npy"))
        emb = np.load(io.BytesIO(emb)).astype(np.float32)
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


class ImageRules:
    """The recipe's image rules, before any assignment (the kept side is inclusive): a batch
    of images (as :func:`load_images` knows them; None when not downloaded) in. An image the
    score stage could not read keeps the score stage's reason."""

    reasons = (NOT_DOWNLOADED, IMAGE_TOO_SMALL, ASPECT_RATIO, NSFW)

    def __init__(self, config: AssignConfig):
        self.config = config

    def judge(self, images: list[dict | None]) -> Verdict:
        return Verdict.of(self._one(image) for image in images)

    def _one(self, image: dict | None) -> str | None:
        config = self.config
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


class AssignedDocumentRules:
    """The document rules after the assignment, on a batch of ``(record, images)`` (the mmc4
    record of :func:`assign_document` with page positions, and the document's images by
    position): refused (too many images or sentences), no image left, faces (``faces:
    drop_doc``, mmc4-ff), mmc4-core (``core: true``)."""

    reasons = (TOO_MANY_IMAGES, TOO_MANY_SENTENCES, NO_IMAGES_LEFT, FACES, *CORE_REASONS)

    def __init__(self, config: AssignConfig):
        self.config = config
        self.core = MMC4Core()

    def judge(self, batch: list[tuple[dict, dict]]) -> Verdict:
        reasons = [self._before_core(record, images) for record, images in batch]
        if self.config.core:
            core = self.core.judge([record for record, _ in batch]).reasons
            reasons = [r if r is not None else c for r, c in zip(reasons, core, strict=True)]
        return Verdict.of(reasons)

    def _before_core(self, record: dict, images: dict) -> str | None:
        if record["refused"] or not record["image_info"]:
            return record["refused"] or NO_IMAGES_LEFT
        if self.config.faces == "drop_doc":
            if any(images[i["position"]]["face_count"] for i in record["image_info"]):
                return FACES
        return None


def assign_one(doc: dict, images: dict[int, dict], scorer, config: AssignConfig):
    """(record, one row per image node of the document: ``image_index``, ``reason`` (None:
    kept so far), ``matched_sim``, ``sentence``); the document rules come after."""
    texts = [n["text"] for n in doc["nodes"] if n["type"] == "text" and n.get("text")]
    n_images = sum(n["type"] == "image" for n in doc["nodes"])
    verdict = ImageRules(config).judge([images.get(k) for k in range(n_images)])
    rows = [
        {"image_index": k, "reason": reason, "matched_sim": None, "sentence": None}
        for k, reason in enumerate(verdict.reasons.tolist())
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
    return record, rows


def assign_documents(
    docs: list[dict], images: dict, scorer, config: AssignConfig, page_urls: Counter | None = None
):
    """(kept ``(doc, record)`` pairs in input order, StageStats, one row per image node of every
    document: ``doc_id``, ``image_index``, ``reason``, ``matched_sim``, ``sentence``).

    Each kept record gets mmc4's ``could_have_url_duplicate``: 1 when another document of the
    corpus has the same page URL, as when Common Crawl captured a page in several snapshots,
    else 0. It is a field of the document, not of its images. ``page_urls`` counts the page
    URLs of the whole corpus; default: those of ``docs``."""
    if page_urls is None:
        page_urls = Counter(doc.get("page_url") for doc in docs if doc.get("page_url"))
    assigned = [assign_one(doc, images.get(doc["doc_id"], {}), scorer, config) for doc in docs]
    batch = [
        (record, images.get(doc["doc_id"], {}))
        for doc, (record, _) in zip(docs, assigned, strict=True)
    ]
    reasons = AssignedDocumentRules(config).judge(batch).reasons.tolist()
    stats = StageStats(STAGE)
    tally = stats.tally("images")
    kept, image_rows = [], []
    for doc, (record, rows), reason in zip(docs, assigned, reasons, strict=True):
        if reason is not None:
            for info in record["image_info"]:
                rows[info["position"]]["reason"] = IN_DROPPED_DOC
        for row in rows:
            if row["reason"] is None:
                tally.keep()
            else:
                tally.drop(row["reason"])
            image_rows.append({"doc_id": doc["doc_id"], **row})
        if reason is not None:
            stats.main.drop(reason)
        else:
            stats.main.keep()
            record["could_have_url_duplicate"] = int(page_urls[doc.get("page_url")] > 1)
            kept.append((doc, record))
    return kept, stats, image_rows


def write_shard(path: str, kept: list[tuple[dict, dict]], images: dict) -> int:
    """Write kept ``(doc, record)`` pairs as one interleaved shard, their images read from the
    downloaded shards; returns the number of documents written."""
    wanted = defaultdict(dict)  # shard -> tar index -> (doc_id, image_index)
    for doc, record in kept:
        for info in record["image_info"]:
            image = images[doc["doc_id"]][info["position"]]
            wanted[image["shard"]][image["index"]] = (doc["doc_id"], info["position"])
    data = shard_io.images_at(wanted)
    return write_doc_shard(
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
            for doc, record in kept
        ],
    )
