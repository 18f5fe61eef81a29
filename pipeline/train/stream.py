"""The CLIP trainer's data: each epoch one reproducible stream of (image, tokens) batches.

Shards are drawn with replacement (``ResampledShards``) by an RNG seeded with ``(seed, epoch,
worker role)``, samples are shuffled in a buffer seeded the same way, and each sample's
augmentation (open_clip's train transform) runs under a torch seed made of ``(seed, epoch,
role, sample index)``. Each of the ``workers`` DataLoader processes has its own stream, so
shards need not be split between workers. A loader can start inside an epoch: the samples
already consumed are skipped before decoding, with the workers' roles rotated so that batches
come in the order of an uninterrupted epoch (see :mod:`vlcurate.pipeline.train.clip`).
"""

import hashlib
import math
import random
from dataclasses import dataclass
from itertools import islice

import torch
import webdataset as wds

from vlcurate.pipeline.storage import webdataset_reads_urls

webdataset_reads_urls()  # --shards 's3://bucket/final/{00000..00099}.tar'


def _shard_samples(shards, handler=wds.warn_and_continue):
    """Samples of each drawn shard, grouped by key within that shard: webdataset's own
    ``tarfile_to_samples`` groups across shard boundaries, so a one-sample shard drawn twice in a
    row reads as one sample with every file twice, and is dropped with a warning. Each shard's
    stream is closed once read."""
    from webdataset import tariterators

    for opened in tariterators.url_opener(shards, handler=handler):
        try:
            files = tariterators.tar_file_expander([opened], handler=handler)
            yield from tariterators.group_by_keys(files, handler=handler)
        finally:
            opened["stream"].close()


shard_samples = wds.pipelinefilter(_shard_samples)


def _seed(*parts) -> int:
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


@dataclass
class _Role:
    """Which stream a DataLoader worker plays. Worker ``w`` of a loader that starts at
    micro-batch ``start`` plays role ``(w + start) % n``, so batches arrive in the order of an
    uninterrupted epoch; the role has already given ``skip`` samples."""

    seed: int
    epoch: int
    start: int  # micro-batches of this epoch already consumed
    batch_size: int

    def __call__(self) -> tuple[int, int]:
        info = torch.utils.data.get_worker_info()
        w, n = (0, 1) if info is None else (info.id, info.num_workers)
        role = (w + self.start) % n
        done = (self.start - role + n - 1) // n  # batches j < start with j % n == role
        return role, done * self.batch_size

    def shard_seed(self) -> int:
        return _seed(self.seed, self.epoch, self()[0], "shards")


class _Stream:
    """Shuffle with a per-role seed, skip what the role already gave, number the samples."""

    def __init__(self, role: _Role, buffer: int, rank: int = 0, world: int = 1):
        self.role, self.buffer, self.rank, self.world = role, buffer, rank, world

    def __call__(self, src):
        role, skip = self.role()
        rng = random.Random(_seed(self.role.seed, self.role.epoch, role, "shuffle"))
        shuffled = wds.shuffle(self.buffer, min(self.buffer, 100), rng=rng)(src)
        for n, sample in enumerate(islice(shuffled, skip, None), start=skip):
            if n % self.world == self.rank:  # this process's share, before any decoding
                yield {**sample, "__n__": n}


class _Prepare:
    """(PIL image, caption, n) -> (image (3, H, W) float, tokens (context_length,) long)."""

    def __init__(self, role: _Role, preprocess, tokenizer):
        self.role, self.preprocess, self.tokenizer = role, preprocess, tokenizer

    def __call__(self, sample):
        image, text, n = sample
        with torch.random.fork_rng(devices=[]):  # per-sample augmentation seed
            torch.manual_seed(_seed(self.role.seed, self.role.epoch, self.role()[0], n))
            image = self.preprocess(image)
        return image, self.tokenizer([text])[0]


def make_loader(
    config,
    preprocess,
    tokenizer,
    epoch: int,
    start: int = 0,
    rank: int = 0,
    world: int = 1,
):
    """The DataLoader for ``epoch`` of a :class:`~vlcurate.pipeline.train.clip.TrainConfig`,
    from micro-batch ``start``, for process ``rank`` of ``world``; yields (images (B, 3, H, W),
    tokens (B, context_length)), B = ``batch_size``. Each worker yields up to
    ceil(batches / workers) batches."""
    global_batch = config.batch_size * world
    batches = config.samples_per_epoch // global_batch
    role = _Role(config.seed, epoch, start, global_batch)
    pipeline = wds.DataPipeline(
        wds.ResampledShards(config.shards, worker_seed=role.shard_seed, deterministic=True),
        shard_samples(),
        _Stream(role, config.shuffle_buffer, rank, world),
        wds.decode("pil", handler=wds.warn_and_continue),
        wds.to_tuple("jpg;png;jpeg;webp", "txt", "__n__", handler=wds.warn_and_continue),
        wds.map(_Prepare(role, preprocess, tokenizer), handler=wds.warn_and_continue),
        wds.batched(config.batch_size, partial=False),
    ).with_epoch(math.ceil(batches / max(1, config.workers)))
    return torch.utils.data.DataLoader(
        pipeline,
        batch_size=None,
        num_workers=config.workers,
        persistent_workers=False,
        pin_memory=torch.cuda.is_available(),
    )
