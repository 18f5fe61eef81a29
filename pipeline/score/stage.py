"""The scoring stage over img2dataset shards: one output set per input shard.

For shard ``NNNNN.tar`` it writes ``scores/NNNNN.parquet`` (one row per sample, decodable or not,
with its status), and clip-retrieval's layout for the embedded samples: ``img_emb/NNNNN.npy``
and ``text_emb/NNNNN.npy`` (float16, L2-normalised) with ``metadata/NNNNN.parquet`` in the same
order. ``_done/NNNNN.json`` is written last; a rerun skips shards that have it.

Images are decoded, converted, hashed, face-detected and preprocessed in DataLoader worker
processes; the main process only batches tensors through CLIP (pinned memory, inference mode,
fp16 autocast on CUDA).
"""

import io
import json
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import torch

from pipeline import storage
from pipeline.score.clip import ClipScorer
from pipeline.score.faces import HaarFaces
from pipeline.score.images import DECODED, decode
from pipeline.score.nsfw import MODEL_NAME, OpenNsfw
from pipeline.stats import StageStats

STAGE = "score"
SCORES_VERSION = "score/1"


@dataclass
class ScoreConfig:
    model: str = field(default="ViT-B-32", metadata={"help": "open_clip model name or config JSON"})
    pretrained: str | None = field(
        default="laion2b_s34b_b79k", metadata={"help": "open_clip tag, local weights file, or none"}
    )
    device: str = field(default="auto", metadata={"help": "cuda, cpu, or auto (cuda if present)"})
    batch_size: int = field(default=256, metadata={"help": "images per CLIP batch"})
    workers: int = field(default=2, metadata={"help": "DataLoader decode processes"})
    faces: bool = field(default=True, metadata={"help": "run the Haar face detector"})
    nsfw: bool = field(default=True, metadata={"help": "run the open_nsfw NSFW classifier"})


class ShardSamples(torch.utils.data.IterableDataset):
    """The samples of one shard, decoded and preprocessed in worker processes (the shard is
    split between workers sample by sample)."""

    def __init__(self, shard: str, preprocess, faces: bool, nsfw: bool):
        self.shard, self.preprocess, self.faces, self.nsfw = shard, preprocess, faces, nsfw

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        detector = HaarFaces() if self.faces else None
        for index, sample in enumerate(tar_samples(self.shard)):
            if index % workers != worker:
                continue
            image, facts = decode(
                sample.get("jpg") or sample.get("png") or sample.get("webp") or b""
            )
            meta = json.loads(sample.get("json", b"{}") or b"{}")
            boxes = detector.detect(image) if (detector and image is not None) else []
            yield {
                "index": index,
                "key": sample["__key__"],
                "caption": (sample.get("txt") or b"").decode("utf-8", "replace"),
                "meta": meta,
                "facts": facts,
                "face_boxes": boxes,
                "pixels": self.preprocess(image) if image is not None else None,
                "nsfw_input": OpenNsfw.prepare(image)
                if (self.nsfw and image is not None)
                else None,
            }


def tar_samples(shard: str):
    """The samples of a WebDataset tar, in order: ``{"__key__": ..., "jpg": bytes, ...}``
    (files of one sample are adjacent and share the name before the first dot)."""
    import tarfile

    import fsspec

    sample: dict = {}
    with fsspec.open(shard, "rb") as f, tarfile.open(fileobj=f, mode="r|*") as tar:
        for member in tar:
            if not member.isfile():
                continue
            key, _, ext = member.name.rpartition("/")[2].partition(".")
            if sample and key != sample["__key__"]:
                yield sample
                sample = {}
            sample["__key__"] = key
            sample[ext] = tar.extractfile(member).read()
    if sample:
        yield sample


def collate(items: list[dict]) -> dict:
    ok = [i for i in items if i["pixels"] is not None]
    nsfw = [i["nsfw_input"] for i in ok if i["nsfw_input"] is not None]
    return {
        "items": items,
        "ok": ok,
        "pixels": torch.stack([i["pixels"] for i in ok]) if ok else None,
        "nsfw_input": np.stack(nsfw) if nsfw and len(nsfw) == len(ok) else None,
    }


def score_shard(shard: str, output: str, clip: ClipScorer, config: ScoreConfig, nsfw=None) -> dict:
    name = shard.rsplit("/", 1)[-1].removesuffix(".tar")
    samples = ShardSamples(shard, clip.preprocess, config.faces, nsfw is not None)
    loader = torch.utils.data.DataLoader(
        samples,
        batch_size=config.batch_size,
        num_workers=config.workers,
        collate_fn=collate,
        pin_memory=clip.device.startswith("cuda"),
    )
    rows, image_emb, text_emb, embedded = [], [], [], []
    for batch in loader:
        scores = {}
        if batch["pixels"] is not None:
            scores = clip.score_batch(batch["pixels"], [i["caption"] for i in batch["ok"]])
            if batch["nsfw_input"] is not None:
                scores["nsfw_p"] = nsfw.score_batch(batch["nsfw_input"])
            image_emb.append(scores["image_emb"].astype(np.float16))
            text_emb.append(scores["text_emb"].astype(np.float16))
        similarity = iter(scores.get(clip.column, []))
        nsfw_p = iter(scores.get("nsfw_p", []))
        for item in batch["items"]:
            scored = item["pixels"] is not None
            row = _row(item, clip.column, float(next(similarity)) if scored else None)
            if nsfw is not None:
                row["nsfw_p"] = float(next(nsfw_p)) if scored else None
                row["nsfw_model"] = MODEL_NAME
            rows.append(row)
            if item["pixels"] is not None:
                meta = item["meta"]
                embedded.append({"index": item["index"], "key": item["key"], "uid": meta.get("uid"),
                                 "url": meta.get("url"), "caption": item["caption"]})  # fmt: skip
    order = np.argsort([r["index"] for r in rows], kind="stable")  # workers interleave samples
    rows = [rows[i] for i in order]
    dim = image_emb[0].shape[1] if image_emb else 0
    img = np.concatenate(image_emb) if image_emb else np.zeros((0, dim), np.float16)
    txt = np.concatenate(text_emb) if text_emb else np.zeros((0, dim), np.float16)
    emb_order = np.argsort([e["index"] for e in embedded], kind="stable")  # the scores' order
    _write(output, name, rows, img[emb_order], txt[emb_order], [embedded[i] for i in emb_order])
    stats = StageStats(STAGE)
    for status, n in Counter(r["status"] for r in rows).items():
        if status == DECODED:
            stats.main.keep(n)
        else:
            stats.main.drop(status, n)
    stats.extra["faces"] += sum(r["face_count"] for r in rows)
    result = stats.to_dict(
        shard=name, model=clip.model, pretrained=clip.pretrained, version=SCORES_VERSION
    )
    storage.write_text_atomic(
        storage.join(output, "_done", f"{name}.json"), json.dumps(result) + "\n"
    )
    return result


def _row(item: dict, column: str, similarity: float | None) -> dict:
    facts, meta = item["facts"], item["meta"]
    return {
        "index": item["index"],
        "key": item["key"],
        "uid": meta.get("uid"),
        "url": meta.get("url"),
        "caption": item["caption"],
        **facts,
        "face_count": len(item["face_boxes"]),
        "face_boxes": json.dumps(item["face_boxes"]),
        column: similarity,
    }


def _write(output, name, rows, img, txt, metadata) -> None:
    def npy(array) -> bytes:
        buffer = io.BytesIO()
        np.save(buffer, array)
        return buffer.getvalue()

    for folder, array in (("img_emb", img), ("text_emb", txt)):
        with storage.atomic_open(storage.join(output, folder, f"{name}.npy")) as f:
            f.write(npy(array))
    columns = [("index", pa.int64()), ("key", pa.string()), ("uid", pa.string()),
               ("url", pa.string()), ("caption", pa.string())]  # fmt: skip
    meta_table = pa.Table.from_pylist(metadata, schema=pa.schema(columns))
    with storage.parquet_writer(
        storage.join(output, "metadata", f"{name}.parquet"), meta_table.schema
    ) as w:
        w.write_table(meta_table)
    table = pa.Table.from_pylist(rows)
    with storage.parquet_writer(
        storage.join(output, "scores", f"{name}.parquet"), table.schema
    ) as w:
        w.write_table(table)


def score_shards(
    shards: list[str], output: str, config: ScoreConfig, progress: bool = True
) -> dict:
    """Score every shard not already done; returns (and writes) the merged stats.json."""
    from tqdm import tqdm

    output = storage.absolute(output)
    device = (
        config.device
        if config.device != "auto"
        else ("cuda" if torch.cuda.is_available() else "cpu")
    )
    clip = ClipScorer(config.model, config.pretrained, device)  # fails here if weights are missing
    nsfw = OpenNsfw() if config.nsfw else None
    merged = StageStats(STAGE)
    for shard in tqdm(shards, desc="score", unit="shard", disable=not progress):
        name = shard.rsplit("/", 1)[-1].removesuffix(".tar")
        marker = storage.join(output, "_done", f"{name}.json")
        done = json.loads(storage.read_text(marker)) if storage.exists(marker) else None
        merged.merge(StageStats.from_dict(done or score_shard(shard, output, clip, config, nsfw)))
    result = merged.to_dict(model=config.model, pretrained=config.pretrained, column=clip.column,
                            version=SCORES_VERSION, shards=len(shards))  # fmt: skip
    storage.write_text_atomic(
        storage.join(output, "stats.json"), json.dumps(result, indent=2) + "\n"
    )
    return result
