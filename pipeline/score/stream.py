"""Scoring many shards through one DataLoader: its worker processes start once, decode every
sample into one uint8 batch, and the main process moves it to the device once, where CLIP,
open_nsfw and the pHash's DCT each take their input from it (the embedding heads read CLIP's
embeddings). The shards are checked a few ahead of the scoring, in threads
(:mod:`~vlcurate.pipeline.score.checks`). A shard is finished (ordered, OCR'd, written) as soon
as every worker has sent its end of it."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from vlcurate.pipeline.score.batches import Batches
from vlcurate.pipeline.score.checks import ShardChecks
from vlcurate.pipeline.score.config import ScoreConfig
from vlcurate.pipeline.score.models import Scorers
from vlcurate.pipeline.score.nsfw import RESIZE as OPEN_NSFW_SIDE
from vlcurate.pipeline.score.passes import FirstPass
from vlcurate.pipeline.score.phash import hashes
from vlcurate.pipeline.score.writer import finish_shard, row
from vlcurate.pipeline.stats import StageStats

NOT_FLOATS = ("image_emb", "text_emb", "phash", "face_boxes")  # per-image, not one float each


@dataclass
class Gathered:
    """What the main process gathers for one shard until all of it has arrived."""

    path: str
    rows: list = field(default_factory=list)
    image_emb: list = field(default_factory=list)
    text_emb: list = field(default_factory=list)
    embedded: list = field(default_factory=list)  # metadata rows, beside the embeddings
    ends: int = 0  # workers done with the shard
    count: int = 0  # samples in the shard

    def add_embedding(self, item: dict, image_emb, text_emb) -> None:
        meta = item["meta"]
        self.image_emb.append(image_emb)
        self.text_emb.append(text_emb)
        self.embedded.append(
            {
                "index": item["index"],
                "key": item["key"],
                "uid": meta.get("uid"),
                "url": meta.get("url"),
                "caption": item["caption"],
            }
        )


def first_pass(config: ScoreConfig, scorers: Scorers) -> FirstPass:
    """The workers' pass: the batch's side is the largest any model on the device reads."""
    clip = scorers.clip
    side = max(clip.image_size, OPEN_NSFW_SIDE if scorers.open_nsfw is not None else 0)
    on_device = scorers.face_device
    faces = "none" if on_device is not None else scorers.faces
    frame = on_device.side if on_device is not None else 0
    return FirstPass(side, clip.squash, clip.tokenizer, faces, config.phash, frame)


def score_stream(
    shards: list[str], output: str, config: ScoreConfig, scorers: Scorers
) -> Iterator[StageStats | str]:
    """Check and score ``shards``; each one's files are written as soon as all of it has been
    scored, and its stats yielded (or the reason it was refused), in the order of ``shards``."""
    gathering = {n: Gathered(path) for n, path in enumerate(shards)}
    ends_needed = max(1, config.workers)
    checks = ShardChecks(shards, shared=config.workers > 0)
    work = first_pass(config, scorers)
    batches = Batches(shards, work, config.batch_size, config.workers, checks.verdicts)
    finished = 0
    try:
        checks.start()
        with _cores_left(config.workers, scorers.clip.device):
            for batch in batches.loader(config.workers, scorers.clip.device):
                scores = _score_batch(batch, scorers)
                batches.release(batch)
                _gather(batch, scores, gathering, scorers)
                while finished in gathering and gathering[finished].ends == ends_needed:
                    gathered, reason = gathering.pop(finished), checks.reason(finished)
                    yield reason or finish_shard(gathered, output, config, scorers)
                    checks.done(finished)
                    finished += 1
    finally:
        checks.close()
    if gathering:
        raise RuntimeError(f"the DataLoader ended before {gathering[finished].path} was whole")


@contextmanager
def _cores_left(workers: int, device: str):
    """On the CPU, the main process's torch threads take only the cores the DataLoader's
    workers leave (at least one): torch's OpenMP threads wait for each other spinning, so two of
    them beside two busy workers on two cores took 1.6x the time of one (measured, the whole
    command, issue 18)."""
    before = torch.get_num_threads()
    if device.startswith("cpu") and workers:
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) - workers))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _score_batch(batch: dict, scorers: Scorers) -> dict:
    """The models on the batch's decoded images, each reading the one uint8 batch on the
    device: per-image scores, the pHashes and the embeddings."""
    if not batch["pixel_rows"]:
        return {}
    pixels = batch["pixels"].to(scorers.clip.device, non_blocking=True)
    scores = scorers.clip.score_batch(pixels, batch["tokens"])
    if scorers.open_nsfw is not None:
        scores["nsfw_p"] = scorers.open_nsfw.score_pixels(pixels)
    if scorers.nsfw is not None:
        scores["nsfw_p"] = scorers.nsfw.score_batch(scores["image_emb"])
    if scorers.watermark is not None:
        scores["watermark_p"] = scorers.watermark.score_batch(scores["image_emb"])
    if scorers.face_device is not None:
        items = [batch["items"][n] for n in batch["pixel_rows"]]
        sizes = [(i["facts"]["width"], i["facts"]["height"]) for i in items]
        frames = batch["face_frame"].to(scorers.clip.device, non_blocking=True)
        scores["face_boxes"] = scorers.face_device.detect(
            frames, batch["face_scale"].tolist(), sizes
        )
    if "thumbnail" in batch:
        scores["phash"] = hashes(batch["thumbnail"].to(scorers.clip.device, non_blocking=True))
    return scores


def _gather(batch: dict, scores: dict, gathering: dict[int, Gathered], scorers: Scorers) -> None:
    """Each item of the batch to its shard: a row (with its scores), an embedding, or the end
    of one worker's share."""
    per_image = {k: v for k, v in scores.items() if k not in NOT_FLOATS}
    position_of = {n: position for position, n in enumerate(batch["pixel_rows"])}
    for n, item in enumerate(batch["items"]):
        gathered = gathering[item["shard"]]
        if "end" in item:
            gathered.ends += 1
            gathered.count = item["end"]
            continue
        values = {}
        position = position_of.get(n)
        if position is not None:
            values = {k: float(v[position]) for k, v in per_image.items()}
            if "phash" in scores:
                item["facts"]["phash"] = scores["phash"][position]
            if "face_boxes" in scores:
                item["face_boxes"] = scores["face_boxes"][position]
            gathered.add_embedding(
                item, scores["image_emb"][position], scores["text_emb"][position]
            )
        gathered.rows.append(row(item, scorers.clip.column, values, scorers))
