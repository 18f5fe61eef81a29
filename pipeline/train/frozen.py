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

import json
import math
import random
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from tqdm import tqdm

from vlcurate.pipeline.icl.frozen import FrozenConfig, FrozenModel
from vlcurate.pipeline.train.clip import _device, _save, lr_at, param_groups, trim_metrics

RESUME_KEYS = ("shards", "interleaved", "batch_size", "lr", "seed") + tuple(
    f.name for f in fields(FrozenConfig)
)


@dataclass
class FrozenTrainConfig:
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
            "name (the demo's: miniweb), or null for random"
        },
    )
    lm: str = field(default="smollm2", metadata={"help": "frozen causal LM: smollm2, HF name/dir"})
    prefix_tokens: int = field(default=2, metadata={"help": "prefix embeddings per image (k)"})
    train_vision: bool = field(
        default=True, metadata={"help": "train the vision tower too (Frozen); else only the map"}
    )
    batch_size: int = field(default=16, metadata={"help": "sequences per step"})
    steps: int = field(default=300, metadata={"help": "optimizer steps in all"})
    lr: float = field(default=3e-4, metadata={"help": "peak learning rate (Frozen: 3e-4)"})
    warmup_steps: int = field(default=20, metadata={"help": "linear warmup, then cosine"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW decay (2-d weights only)"})
    max_tokens: int = field(default=256, metadata={"help": "cut longer sequences (interleaved)"})
    shuffle_buffer: int = field(default=500, metadata={"help": "sample shuffle buffer"})
    workers: int = field(default=1, metadata={"help": "DataLoader decode processes"})
    seed: int = field(default=0, metadata={"help": "seed for init, shard order and shuffle"})
    checkpoint_every: int = field(default=100, metadata={"help": "checkpoint every N steps"})
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

    seed = config.seed * 1_000_003 + step
    pipeline = wds.DataPipeline(
        wds.ResampledShards(config.shards, worker_seed=_WorkerSeed(seed), deterministic=True),
        wds.tarfile_to_samples(handler=wds.warn_and_continue),
        wds.shuffle(config.shuffle_buffer, min(config.shuffle_buffer, 50), rng=random.Random(seed)),
        wds.decode("pil", handler=wds.warn_and_continue),
        wds.map(_Sequences(preprocess, config.interleaved), handler=wds.warn_and_continue),
        wds.select(_usable),
        wds.batched(config.batch_size, collation_fn=list, partial=False),
    )
    return torch.utils.data.DataLoader(pipeline, batch_size=None, num_workers=config.workers)


def train(config: FrozenTrainConfig, model: FrozenModel | None = None) -> dict:
    """Train (or resume) and return a summary: steps, first and last loss, paths, seconds.

    ``model``: train this one (built from ``config.model_config()`` with the same
    ``config.seed`` if not given), e.g. to look at its language model afterwards."""
    if not config.shards:
        raise ValueError("shards are required (a brace pattern such as 'DIR/{00000..00009}.tar')")
    t_start = time.perf_counter()
    out = Path(config.output)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    device = _device(config.device)
    torch.manual_seed(config.seed)
    if model is None:
        model = FrozenModel(config.model_config(), device=device)
    elif model.config != config.model_config():
        raise ValueError(f"the model is {model.config}, the settings say {config.model_config()}")
    optimizer = torch.optim.AdamW(param_groups(model, config.weight_decay), lr=config.lr)
    step = 0
    latest, metrics_path = out / "checkpoints" / "latest.pt", out / "metrics.jsonl"
    if latest.exists():
        ckpt = torch.load(latest, map_location=device, weights_only=False)
        diff = {
            k: (ckpt["config"].get(k), getattr(config, k))
            for k in RESUME_KEYS
            if ckpt["config"].get(k) != getattr(config, k)
        }
        if diff:
            raise ValueError(f"{latest} was written with other settings (saved, now): {diff}")
        model.load_state_dict(ckpt["state"])
        optimizer.load_state_dict(ckpt["optimizer"])
        step = ckpt["step"]
    trim_metrics(metrics_path, step)

    def checkpoint() -> None:
        _save(
            {
                "state": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "step": step,
                "config": asdict(config),
            },
            latest,
        )

    model.train()
    loss_value, first_loss, saved_at = math.nan, None, step
    bar = tqdm(total=config.steps, initial=step, disable=not config.progress, desc="train frozen")
    batches = iter(make_loader(config, model.preprocess, step))
    with metrics_path.open("a") as metrics:
        while step < config.steps:
            t0 = time.perf_counter()
            lr = lr_at(step, config.lr, config.warmup_steps, config.steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = next(batches)
            t_data = time.perf_counter() - t0
            loss = model.loss(batch, config.max_tokens)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            loss_value = float(loss.detach())
            first_loss = loss_value if first_loss is None else first_loss
            dt = time.perf_counter() - t0
            metrics.write(
                json.dumps(
                    {
                        "step": step,
                        "loss": loss_value,
                        "lr": lr,
                        "samples_per_s": len(batch) / dt,
                        "data_share": t_data / dt,
                    }
                )
                + "\n"
            )
            metrics.flush()
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.3f}")
            if config.checkpoint_every and step % config.checkpoint_every == 0:
                checkpoint()
                saved_at = step
    bar.close()
    if saved_at != step:
        checkpoint()
    final = out / "final.pt"
    model.save(final)
    return {
        "steps": step,
        "loss": loss_value,
        "first_loss": first_loss,
        "final": str(final),
        "metrics": str(metrics_path),
        "latest": str(latest),
        "seconds": time.perf_counter() - t_start,
    }
