"""Train a Frozen-style model (``curate train frozen``): the caption's likelihood given the image.

For each caption shard sample the sequence is ``[image, caption]`` and the loss is the caption's
next-token cross-entropy with the image's ``k`` prefix embeddings before it
(:class:`~vlcurate.pipeline.icl.frozen.FrozenModel`). For interleaved shards (``curate docs
assign``'s output; ``interleaved=True``) the sequence is the document, its images in place, and the
loss is on all its text, each sentence predicted from the images and text before it (cut at
``max_tokens``). The language model is frozen: AdamW holds the vision tower and the map only, and
the LM's parameters come out bit for bit as they went in (tested).

The run folder holds ``metrics.jsonl`` (step, loss, lr, samples/s), ``checkpoints/latest.pt``
(the trainable weights, the optimiser, the step) and ``final.pt``, which
:meth:`FrozenModel.load <vlcurate.pipeline.icl.frozen.FrozenModel.load>` and ``curate eval icl
--frozen`` read. Running the same command again resumes from ``latest.pt``; the sample stream after
a resume is seeded by the step it resumes at, so it is deterministic but not the stream an
uninterrupted run would have read.
"""

import math
import random
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import ClassVar

import torch
from tqdm import tqdm

from vlcurate.pipeline.config import Config
from vlcurate.pipeline.icl.frozen import FrozenConfig, FrozenModel
from vlcurate.pipeline.train import checkpoint
from vlcurate.pipeline.train.distributed import train_device
from vlcurate.pipeline.train.optim import lr_at, param_groups, set_lr

RESUME_KEYS = ("shards", "interleaved", "batch_size", "lr", "seed") + tuple(
    f.name for f in fields(FrozenConfig)
)


@dataclass
class FrozenTrainConfig(Config):
    """The settings of ``curate train frozen``: the model's (:class:`FrozenConfig`) and the
    run's."""

    section: ClassVar[str] = "frozen"
    shards: str = field(default="", metadata={"help": "shard URLs, a brace pattern (quote it)"})
    output: str = field(default="runs/frozen", metadata={"help": "run directory"})
    interleaved: bool = field(
        default=False, metadata={"help": "the shards are interleaved documents (curate docs)"}
    )
    clip_model: str = field(
        default="ViT-B-32", metadata={"help": "vision side: open_clip name or config JSON"}
    )
    clip_pretrained: str | None = field(
        default="laion2b_s34b_b79k",
        metadata={
            "help": "vision weights: an open_clip tag, a .pt file, a local checkpoint's "
            "name (the demo's: miniweb), or none for random",
            "weights": True,
        },
    )
    lm: str = field(default="smollm2", metadata={"help": "frozen causal LM: smollm2, HF name/dir"})
    prefix_tokens: int = field(
        default=2, metadata={"help": "prefix embeddings per image (k)", "min": 1}
    )
    train_vision: bool = field(
        default=True, metadata={"help": "train the vision tower too (Frozen); else only the map"}
    )
    batch_size: int = field(default=16, metadata={"help": "sequences per step", "min": 1})
    steps: int = field(default=300, metadata={"help": "optimizer steps in all", "min": 1})
    lr: float = field(
        default=3e-4, metadata={"help": "peak learning rate (Frozen: 3e-4)", "above": 0}
    )
    warmup_steps: int = field(default=20, metadata={"help": "linear warmup, then cosine", "min": 0})
    weight_decay: float = field(
        default=0.0, metadata={"help": "AdamW decay (2-d weights only)", "min": 0}
    )
    max_tokens: int = field(
        default=256, metadata={"help": "cut longer sequences (interleaved)", "min": 2}
    )
    shuffle_buffer: int = field(default=500, metadata={"help": "sample shuffle buffer", "min": 0})
    workers: int = field(default=1, metadata={"help": "DataLoader decode processes", "min": 0})
    seed: int = field(
        default=0, metadata={"help": "seed for init, shard order and shuffle", "min": 0}
    )
    checkpoint_every: int = field(
        default=100, metadata={"help": "checkpoint every N steps (0: only at the end)", "min": 0}
    )
    device: str = field(default="auto", metadata={"help": "cpu, cuda, cuda:N or auto"})
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})

    def model_config(self) -> FrozenConfig:
        return FrozenConfig(**{f.name: getattr(self, f.name) for f in fields(FrozenConfig)})


class _Sequences:
    """A decoded sample -> the training sequence of strings and image tensors."""

    def __init__(self, preprocess, interleaved: bool):
        self.preprocess, self.interleaved = preprocess, interleaved

    def __call__(self, sample: dict) -> list:
        if self.interleaved:
            from vlcurate.pipeline.docs.shards import interleaved

            parts = interleaved(sample)
        else:
            image = next(sample[k] for k in ("jpg", "png", "jpeg", "webp") if k in sample)
            parts = [image, sample["txt"]]
        return [p if isinstance(p, str) else self.preprocess(p.convert("RGB")) for p in parts]


def _usable(sequence: list) -> bool:
    return any(isinstance(p, str) and p.strip() for p in sequence)


class _WorkerSeed:
    """The shard-sampling seed of each DataLoader worker (workers read different shards)."""

    def __init__(self, seed: int):
        self.seed = seed

    def __call__(self) -> int:
        info = torch.utils.data.get_worker_info()
        return self.seed * 1_000 + (info.id if info else 0)


def make_loader(config: FrozenTrainConfig, preprocess, step: int):
    """Endless batches (lists of sequences), seeded by ``(seed, step)``."""
    import webdataset as wds

    from vlcurate.pipeline.storage import webdataset_reads_urls
    from vlcurate.pipeline.train.stream import shard_samples

    webdataset_reads_urls()
    seed = config.seed * 1_000_003 + step
    pipeline = wds.DataPipeline(
        wds.ResampledShards(config.shards, worker_seed=_WorkerSeed(seed), deterministic=True),
        shard_samples(),
        wds.shuffle(config.shuffle_buffer, min(config.shuffle_buffer, 50), rng=random.Random(seed)),
        wds.decode("pil", handler=wds.warn_and_continue),
        wds.map(_Sequences(preprocess, config.interleaved), handler=wds.warn_and_continue),
        wds.select(_usable),
        wds.batched(config.batch_size, collation_fn=list, partial=False),
    )
    return torch.utils.data.DataLoader(pipeline, batch_size=None, num_workers=config.workers)


class FrozenRun:
    """One run: the model, its optimiser, the step counter and the run folder."""

    def __init__(self, config: FrozenTrainConfig, model: FrozenModel | None = None):
        if not config.shards:
            raise ValueError(
                "shards are required (a brace pattern such as 'DIR/{00000..00009}.tar')"
            )
        self.config, self.out = config, Path(config.output)
        (self.out / "checkpoints").mkdir(parents=True, exist_ok=True)
        self.latest = self.out / "checkpoints" / "latest.pt"
        self.metrics_path = self.out / "metrics.jsonl"
        self.device = train_device(config.device, 0)
        torch.manual_seed(config.seed)
        if model is None:
            model = FrozenModel(config.model_config(), device=self.device)
        elif model.config != config.model_config():
            raise ValueError(
                f"the model is {model.config}, the settings say {config.model_config()}"
            )
        self.model = model
        self.optimizer = torch.optim.AdamW(param_groups(model, config.weight_decay), lr=config.lr)
        self.step = 0

    def resume(self) -> None:
        """Continue from ``checkpoints/latest.pt`` when there is one (same settings only)."""
        ckpt = checkpoint.load_latest(self.latest, self.config, RESUME_KEYS, self.device)
        if ckpt is not None:
            self.model.load_state_dict(ckpt["state"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.step = ckpt["step"]
        checkpoint.trim_metrics(self.metrics_path, self.step)

    def save_checkpoint(self) -> None:
        state = {
            "state": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "config": asdict(self.config),
        }
        checkpoint.save(state, self.latest)

    def optimizer_step(self, batches) -> dict:
        """One step on the next batch of sequences; returns its metrics row."""
        config = self.config
        t0 = time.perf_counter()
        lr = lr_at(self.step, config.lr, config.warmup_steps, config.steps)
        set_lr(self.optimizer, lr)
        batch = next(batches)
        t_data = time.perf_counter() - t0
        loss = self.model.loss(batch, config.max_tokens)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        loss_value = float(loss.detach())
        dt = time.perf_counter() - t0
        return {
            "step": self.step,
            "loss": loss_value,
            "lr": lr,
            "samples_per_s": len(batch) / dt,
            "data_share": t_data / dt,
        }

    def fit(self) -> tuple[float | None, float]:
        """Train to ``steps``, checkpoint, write ``final.pt``; the first and last loss."""
        config, first, loss, saved_at = self.config, None, math.nan, self.step
        self.model.train()
        show = config.progress
        bar = tqdm(total=config.steps, initial=self.step, disable=not show, desc="train frozen")
        batches = iter(make_loader(config, self.model.preprocess, self.step))
        with self.metrics_path.open("a") as metrics:
            while self.step < config.steps:
                row = self.optimizer_step(batches)
                loss = row["loss"]
                first = loss if first is None else first
                checkpoint.write_metrics(metrics, row)
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}")
                if config.checkpoint_every and self.step % config.checkpoint_every == 0:
                    self.save_checkpoint()
                    saved_at = self.step
        bar.close()
        if saved_at != self.step:
            self.save_checkpoint()
        self.model.save(self.out / "final.pt")
        return first, loss


def train(config: FrozenTrainConfig, model: FrozenModel | None = None) -> dict:
    """Train (or resume) and return a summary: steps, first and last loss, paths, seconds.

    ``model``: train this one (built from ``config.model_config()`` with the same
    ``config.seed`` if not given), e.g. to look at its language model afterwards."""
    t_start = time.perf_counter()
    run = FrozenRun(config, model)
    run.resume()
    first, loss = run.fit()
    return {
        "steps": run.step,
        "loss": loss,
        "first_loss": first,
        "final": str(run.out / "final.pt"),
        "metrics": str(run.metrics_path),
        "latest": str(run.latest),
        "seconds": time.perf_counter() - t_start,
    }
