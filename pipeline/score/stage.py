"""The scoring stage over img2dataset shards: one output set per input shard.

For shard ``NNNNN.tar`` it writes ``scores/NNNNN.parquet`` (one row per sample, decodable or not,
with its status), and clip-retrieval's layout for the embedded samples: ``img_emb/NNNNN.npy``
and ``text_emb/NNNNN.npy`` (float16, L2-normalised) with ``metadata/NNNNN.parquet`` in the same
order. ``_done/NNNNN.json`` is written last; a rerun skips shards that have it.

A shard takes two passes. The first decodes, hashes, face-detects and preprocesses every image
in DataLoader worker processes, while the main process only moves uint8 batches to the device
(pinned memory) and runs CLIP, the embedding heads and the NSFW network on whole batches. The
second, only with ``watermark=ocr``, runs OCR in the workers on the images that earned it (all
decoded images, or those at or above ``watermark_min_clip``): OCR costs about 0.2 s per image
on a CPU core, a hundred times CLIP's share.
"""

import io
import json
import multiprocessing
from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
import torch

from vlcurate.pipeline import storage
from vlcurate.pipeline.devices import process_devices
from vlcurate.pipeline.score.clip import ClipScorer
from vlcurate.pipeline.score.heads import embedding_scorer
from vlcurate.pipeline.score.images import DECODED, decode
from vlcurate.pipeline.score.shards import ShardStream, image_bytes
from vlcurate.pipeline.stats import StageStats
from vlcurate.schemas.score import METADATA_SCHEMA, scores_schema
from vlcurate.schemas.score import SCHEMA_VERSION as SCORES_VERSION

STAGE = "score"
OPEN_NSFW = "open-nsfw"
OPEN_NSFW_SIDE = 256  # open_nsfw resizes to 256, then crops 224
OCR = "ocr"


@dataclass
class ScoreConfig:
    model: str = field(default="ViT-B-32", metadata={"help": "open_clip model name or config JSON"})
    pretrained: str | None = field(
        default="laion2b_s34b_b79k", metadata={"help": "open_clip tag, local weights file, or none"}
    )
    device: str = field(
        default="auto", metadata={"help": "cuda, cuda:N, cpu, or auto (cuda if present)"}
    )
    batch_size: int = field(default=256, metadata={"help": "images per CLIP batch"})
    workers: int = field(default=2, metadata={"help": "DataLoader decode processes per device"})
    processes: int = field(
        default=0,
        metadata={"help": "scoring processes, each with its own device and shards; 0: one per GPU"},
    )
    faces: str = field(default="haar", metadata={"help": "face detector: haar, mtcnn or none"})
    nsfw: str = field(
        default=OPEN_NSFW,
        metadata={"help": "open-nsfw (packaged ONNX), head:FILE (CLIP head), zero-shot or none"},
    )
    watermark: str = field(
        default=OCR,
        metadata={"help": "ocr (stock marks, packaged OCR), head:FILE, zero-shot or none"},
    )
    watermark_min_clip: float | None = field(
        default=None,
        metadata={"help": "run OCR only on images with CLIP similarity >= this (OCR is slow)"},
    )
    phash: bool = field(default=True, metadata={"help": "compute the perceptual hash"})


@dataclass
class FirstPass:
    """Per worker: decode, facts, faces, CLIP's uint8 pixels and tokens, open_nsfw's input."""

    prepare: object  # ClipScorer.prepare
    tokenize: object  # ClipScorer.tokenizer
    faces: str
    nsfw: bool
    phash: bool
    image_size: int  # CLIP's input side

    @property
    def min_side(self) -> int | None:
        """The side every consumer is served by (large JPEGs decode at a reduced scale, down
        to twice this); faces need the full image."""
        if self.faces != "none":
            return None
        return max(self.image_size, OPEN_NSFW_SIDE if self.nsfw else 0)

    def __call__(self):
        from vlcurate.pipeline.score.faces import face_detector

        detector = face_detector(self.faces) if self.faces != "none" else None
        if self.nsfw:
            from vlcurate.pipeline.score.nsfw import OpenNsfw

        def work(index: int, sample: dict) -> dict:
            data = image_bytes(sample)
            caption = (sample.get("txt") or b"").decode("utf-8", "replace")
            item = {
                "index": index,
                "key": sample["__key__"],
                "caption": caption,
                "meta": json.loads(sample.get("json") or b"{}"),
                "face_boxes": [],
            }
            image, facts = decode(data, phash=self.phash, min_side=self.min_side)
            item["facts"] = facts
            if image is not None:
                item["tokens"] = self.tokenize([caption])[0]
                item["pixels"] = self.prepare(image)
                item["face_boxes"] = detector.detect(image) if detector else []
                item["nsfw_input"] = OpenNsfw.prepare(image) if self.nsfw else None
            return item

        return work


@dataclass
class OcrPass:
    """Per worker: OCR for stock-photo watermarks."""

    def __call__(self):
        from vlcurate.pipeline.score.watermark import OcrWatermark

        ocr = OcrWatermark()

        def work(index: int, sample: dict) -> dict:
            image, _ = decode(image_bytes(sample), phash=False)
            return {"index": index, **(ocr.detect(image) if image is not None else {})}

        return work


def collate(items: list[dict]) -> dict:
    """Runs in the worker: the arrays are stacked into one tensor each (one shared-memory
    transfer, one pinned copy) and taken out of the items; ``pixel_rows`` says which items the
    pixels and tokens belong to."""
    pixel_rows = [n for n, i in enumerate(items) if i.get("pixels") is not None]
    nsfw = [items[n]["nsfw_input"] for n in pixel_rows if items[n]["nsfw_input"] is not None]
    batch = {
        "items": items,
        "pixel_rows": pixel_rows,
        "pixels": torch.stack([items[n]["pixels"] for n in pixel_rows]) if pixel_rows else None,
        "tokens": torch.stack([items[n]["tokens"] for n in pixel_rows]) if pixel_rows else None,
        "nsfw_input": np.stack(nsfw) if nsfw and len(nsfw) == len(pixel_rows) else None,
    }
    for item in items:
        for key in ("pixels", "tokens", "nsfw_input"):
            item.pop(key, None)
    return batch


class Scorers:
    """The models of one process, loaded once and reused for every shard it scores. Bad model
    settings (missing weights, a head of the wrong width) fail here, before any image is read."""

    def __init__(self, config: ScoreConfig, device: str):
        self.config = config
        self.clip = ClipScorer(config.model, config.pretrained, device)
        self.nsfw_model = self.watermark_model = None
        self.nsfw = self.watermark = None  # embedding scorers
        self.open_nsfw = None
        if config.nsfw == OPEN_NSFW:
            from vlcurate.pipeline.score.nsfw import MODEL_NAME, OpenNsfw

            self.open_nsfw, self.nsfw_model = OpenNsfw(), MODEL_NAME
        elif config.nsfw != "none":
            self.nsfw = embedding_scorer(config.nsfw, self.clip, "nsfw")
            self.nsfw_model = self.nsfw.name
        if config.watermark == OCR:
            from vlcurate.pipeline.score.watermark import MODEL_NAME as OCR_MODEL

            self.watermark_model = OCR_MODEL
        elif config.watermark != "none":
            self.watermark = embedding_scorer(config.watermark, self.clip, "watermark")
            self.watermark_model = self.watermark.name
        if config.faces != "none":
            from vlcurate.pipeline.score.faces import face_detector

            self.face_model = face_detector(config.faces).name
        else:
            self.face_model = None


def _loader(dataset, config: ScoreConfig, device: str, batch_size: int):
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=config.workers,
        collate_fn=collate,
        pin_memory=device.startswith("cuda"),
    )


@dataclass
class _Shard:
    """What the main process gathers for one shard until all of it has arrived."""

    path: str
    rows: list = field(default_factory=list)
    image_emb: list = field(default_factory=list)
    text_emb: list = field(default_factory=list)
    embedded: list = field(default_factory=list)
    ends: int = 0
    count: int = 0


def score_shard(shard: str, output: str, scorers: "Scorers") -> dict:
    (result,) = score_stream([shard], output, scorers)
    return result


def score_stream(shards: list[str], output: str, scorers: "Scorers", on_done=None) -> list[dict]:
    """Score ``shards`` through one DataLoader (its workers start once, not once per shard);
    each shard is written, with its done marker, as soon as all of it has been scored."""
    config, clip = scorers.config, scorers.clip
    first = FirstPass(
        clip.prepare,
        clip.tokenizer,
        config.faces,
        scorers.open_nsfw is not None,
        config.phash,
        clip.image_size,
    )
    open_shards = {n: _Shard(path) for n, path in enumerate(shards)}
    results: dict[int, dict] = {}
    ends_needed = max(1, config.workers)
    for batch in _loader(ShardStream(shards, first), config, clip.device, config.batch_size):
        scores: dict = {}
        if batch["pixels"] is not None:
            scores = clip.score_batch(batch["pixels"], batch["tokens"])
            if scorers.open_nsfw is not None and batch["nsfw_input"] is not None:
                scores["nsfw_p"] = scorers.open_nsfw.score_batch(batch["nsfw_input"])
            if scorers.nsfw is not None:
                scores["nsfw_p"] = scorers.nsfw.score_batch(scores["image_emb"])
            if scorers.watermark is not None:
                scores["watermark_p"] = scorers.watermark.score_batch(scores["image_emb"])
        per_image = {k: v for k, v in scores.items() if k not in ("image_emb", "text_emb")}
        position_of = {n: position for position, n in enumerate(batch["pixel_rows"])}
        for n, item in enumerate(batch["items"]):
            gathered = open_shards[item["shard"]]
            if "end" in item:
                gathered.ends += 1
                gathered.count = item["end"]
                continue
            values = {}
            position = position_of.get(n)
            if position is not None:
                values = {k: float(v[position]) for k, v in per_image.items()}
                gathered.image_emb.append(scores["image_emb"][position])
                gathered.text_emb.append(scores["text_emb"][position])
                meta = item["meta"]
                gathered.embedded.append(
                    {
                        "index": item["index"],
                        "key": item["key"],
                        "uid": meta.get("uid"),
                        "url": meta.get("url"),
                        "caption": item["caption"],
                    }
                )
            gathered.rows.append(_row(item, clip.column, values, scorers))
        for n in [n for n, g in open_shards.items() if g.ends == ends_needed]:
            gathered = open_shards.pop(n)
            assert len(gathered.rows) == gathered.count, f"{gathered.path}: samples missing"
            results[n] = _finish(gathered, output, scorers)
            if on_done is not None:
                on_done(results[n])
    return [results[n] for n in range(len(shards))]


def _finish(gathered: _Shard, output: str, scorers: "Scorers") -> dict:
    """Order, OCR (if asked), write the shard's files atomically, then its done marker."""
    config, clip = scorers.config, scorers.clip
    name = shard_name(gathered.path)
    order = np.argsort([r["index"] for r in gathered.rows], kind="stable")  # workers interleave
    rows = [gathered.rows[i] for i in order]
    stats = StageStats(STAGE)
    if config.watermark == OCR:
        _ocr_pass(gathered.path, rows, clip.column, config, stats)
    emb_order = np.argsort([e["index"] for e in gathered.embedded], kind="stable")
    img = np.zeros((0, clip.dim), np.float16)
    txt = np.zeros((0, clip.dim), np.float16)
    if len(emb_order):
        img = np.stack(gathered.image_emb)[emb_order].astype(np.float16)
        txt = np.stack(gathered.text_emb)[emb_order].astype(np.float16)
    metadata = [gathered.embedded[i] for i in emb_order]
    _write(output, name, rows, clip.column, img, txt, metadata)
    for status, n in Counter(r["status"] for r in rows).items():
        if status == DECODED:
            stats.main.keep(n)
        else:
            stats.main.drop(status, n)
    stats.extra["faces"] += sum(r["face_count"] or 0 for r in rows)
    result = stats.to_dict(shard=name, version=SCORES_VERSION, _settings=settings(config))
    storage.write_text_atomic(
        storage.join(output, "_done", f"{name}.json"), json.dumps(result) + "\n"
    )
    return result


def _ocr_pass(shard, rows, column, config, stats) -> None:
    """Fill ``watermark_p`` (and the matched text) for the decoded rows OCR is spent on."""
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
        for batch in _loader(dataset, config, "cpu", batch_size):
            for item in batch["items"]:
                if "end" in item:
                    continue
                row = by_index[item["index"]]
                row["watermark_p"] = item.get("watermark_p")
                row["watermark_text"] = item.get("watermark_text")
    stats.extra["watermark_checked"] += len(wanted)
    stats.extra["watermark_skipped"] += sum(r["status"] == DECODED for r in rows) - len(wanted)


def _row(item: dict, column: str, values: dict, scorers: Scorers) -> dict:
    facts, meta = item["facts"], item["meta"]
    row = {
        "index": item["index"],
        "key": item["key"],
        "uid": meta.get("uid"),
        "url": meta.get("url"),
        "caption": item["caption"],
        **facts,
        "face_count": len(item["face_boxes"]) if scorers.face_model else None,
        "face_boxes": json.dumps(item["face_boxes"]) if scorers.face_model else None,
        "face_model": scorers.face_model,
        column: values.get(column),
        "nsfw_p": values.get("nsfw_p"),
        "nsfw_model": scorers.nsfw_model,
        "watermark_p": values.get("watermark_p"),
        "watermark_model": scorers.watermark_model,
        "watermark_text": None,
    }
    return row


def _write(output, name, rows, column, img, txt, metadata) -> None:
    def npy(array) -> bytes:
        buffer = io.BytesIO()
        np.save(buffer, array)
        return buffer.getvalue()

    for folder, array in (("img_emb", img), ("text_emb", txt)):
        with storage.atomic_open(storage.join(output, folder, f"{name}.npy")) as f:
            f.write(npy(array))
    meta_table = pa.Table.from_pylist(metadata, schema=METADATA_SCHEMA)
    with storage.parquet_writer(
        storage.join(output, "metadata", f"{name}.parquet"), meta_table.schema
    ) as w:
        w.write_table(meta_table)
    table = pa.Table.from_pylist(rows, schema=scores_schema(column))
    with storage.parquet_writer(
        storage.join(output, "scores", f"{name}.parquet"), table.schema
    ) as w:
        w.write_table(table)


def shard_name(shard: str) -> str:
    return shard.rsplit("/", 1)[-1].removesuffix(".tar")


class SettingsMismatch(ValueError):
    """The output folder holds shards scored with other settings: mixing them would be silent."""


def settings(config: ScoreConfig) -> dict:
    """What decides a shard's scores (not how fast they come): kept in each done marker."""
    keys = ("model", "pretrained", "faces", "nsfw", "watermark", "watermark_min_clip", "phash")
    return {key: getattr(config, key) for key in keys}


def done_result(output: str, shard: str, config: ScoreConfig) -> dict | None:
    """The shard's done marker, if it was scored already (with the same settings)."""
    marker = storage.join(output, "_done", f"{shard_name(shard)}.json")
    if not storage.exists(marker):
        return None
    result = json.loads(storage.read_text(marker))
    if result.get("_settings") != settings(config):
        raise SettingsMismatch(
            f"{output} holds {shard_name(shard)} scored with {result.get('_settings')}, not "
            f"{settings(config)}: score into a new --output folder, or delete this one"
        )
    return result


def score_shard_list(
    shards: list[str],
    output: str,
    config: ScoreConfig,
    device: str,
    progress: bool = True,
    position: int = 0,
) -> list[dict]:
    """Score the shards not already done, in this process, on ``device``."""
    from tqdm import tqdm

    done = [done_result(output, shard, config) for shard in shards]
    todo = [shard for shard, result in zip(shards, done, strict=True) if result is None]
    bar = tqdm(
        total=len(shards),
        initial=len(shards) - len(todo),
        desc=f"score {device}",
        unit="shard",
        disable=not progress,
        position=position,
    )
    if todo:
        score_stream(todo, output, Scorers(config, device), on_done=lambda _: bar.update())
    bar.close()
    pairs = zip(shards, done, strict=True)
    return [result or done_result(output, shard, config) for shard, result in pairs]


def _process_main(shards, output, config_dict, device, position, queue) -> None:
    try:
        results = score_shard_list(
            shards, output, ScoreConfig(**config_dict), device, True, position
        )
        queue.put((position, results, None))
    except BaseException as e:  # reported to the parent, which raises it
        queue.put((position, None, f"{type(e).__name__}: {e}"))


def score_shards(
    shards: list[str], output: str, config: ScoreConfig, progress: bool = True
) -> dict:
    """Score every shard not already done; returns (and writes) the merged stats.json. With more
    than one device (every GPU of the machine by default), one process per device takes every
    n-th shard."""
    output = storage.absolute(output)
    devices = process_devices(config.device, config.processes)
    if len(devices) == 1:
        results = score_shard_list(shards, output, config, devices[0], progress)
    else:
        if not all(done_result(output, s, config) for s in shards):
            Scorers(config, "cpu")  # bad settings fail here, once, before processes start
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        processes = [
            context.Process(
                target=_process_main,
                args=(shards[i :: len(devices)], output, asdict(config), device, i, queue),
            )
            for i, device in enumerate(devices)
        ]
        for p in processes:
            p.start()
        outcomes = [queue.get() for _ in processes]
        for p in processes:
            p.join()
        errors = [error for _, _, error in outcomes if error]
        if errors:
            raise RuntimeError("scoring processes failed: " + "; ".join(errors))
        results = [r for _, rs, _ in outcomes for r in rs]
    return write_stats(output, results, config)


def write_stats(output: str, results: list[dict], config: ScoreConfig) -> dict:
    from vlcurate.pipeline.score.clip import column_name

    merged = StageStats(STAGE)
    for result in results:
        merged.merge(StageStats.from_dict(result))
    result = merged.to_dict(
        model=config.model,
        pretrained=config.pretrained,
        column=column_name(config.model),
        version=SCORES_VERSION,
        shards=len(results),
        nsfw=config.nsfw,
        watermark=config.watermark,
        watermark_min_clip=config.watermark_min_clip,
        face_detector=config.faces,
    )
    storage.write_text_atomic(
        storage.join(output, "stats.json"), json.dumps(result, indent=2) + "\n"
    )
    return result
