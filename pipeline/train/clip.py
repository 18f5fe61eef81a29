"""A small CLIP training loop over img2dataset-style WebDataset shards, with open_clip models.

``train(TrainConfig(...))`` streams ``key.jpg``/``key.txt`` pairs, trains with open_clip's
``ClipLoss`` (AdamW, linear warmup then cosine per optimizer step, learnable temperature clamped
to at most 100), and writes into ``output``:

- ``metrics.jsonl``: one line per optimizer step;
- ``checkpoints/step_N.pt`` every ``checkpoint_every`` steps, and ``checkpoints/latest.pt``
  (written to a temporary name, then renamed) at those steps and when the run stops;
- ``final.pt``: the model's state dict, which ``open_clip.create_model_and_transforms(model,
  pretrained="final.pt")`` loads.

Data. Each epoch is its own stream: shards are drawn with replacement (``ResampledShards``) by an
RNG seeded with ``(seed, epoch, worker role)``, samples are shuffled in a buffer seeded the same
way, and each sample's augmentation (open_clip's train transform) runs under a torch seed made of
``(seed, epoch, role, sample index)``. An epoch is ``samples_per_epoch // batch_size``
micro-batches; each of the ``workers`` DataLoader processes has its own stream, so there is no
need to split shards between workers.

Resume. A run whose ``output`` holds ``checkpoints/latest.pt`` continues from it: model,
optimizer, grad scaler, the step counter (hence the LR schedule), the epoch, and the Python,
NumPy and torch RNG states are restored; ``metrics.jsonl`` is cut back to the restored step. The
data position is rebuilt, not stored: the epoch's stream is regenerated from its seed and the
samples already consumed are skipped before decoding (reading, not decoding, their bytes), with
the DataLoader workers' roles rotated so that batches come in the original order. So a resumed
run sees the same batches as an uninterrupted one, with the same ``workers``, when every sample
decodes: a sample dropped as undecodable is counted as consumed too early by the skip, which
then shifts the rest of that epoch (later epochs are unaffected). Settings that change the
trajectory must match the checkpoint's (:data:`RESUME_KEYS`); ``max_steps``,
``checkpoint_every``, ``device`` and ``output`` may differ. Bit-identical losses also need the
same device and precision; the tests check CPU float32 with ``workers=0``.

Several processes. Under ``torchrun`` (``WORLD_SIZE`` > 1) each process trains a replica
wrapped in DistributedDataParallel (NCCL on CUDA, one GPU per ``LOCAL_RANK``; gloo on the CPU).
``batch_size`` is per process, so a step sees ``batch_size * world_size`` pairs, and the
contrastive loss is open_clip's ``ClipLoss(local_loss=True, gather_with_grad=True)``: each
process scores its own pairs against the features gathered from all, and DDP's gradient mean
makes the step the same as one process with the whole global batch. Every process reads the
same sample stream and decodes only the samples ``n`` with ``n % world_size == rank``: the
global micro-batch ``k`` is the stream's samples ``[k G, (k + 1) G)``, as in one process with
batch ``G = batch_size * world_size``, at the cost of every process reading (not decoding) all
the bytes. Rank 0 writes metrics and checkpoints; a resume needs the same world size.

Gradient accumulation sums the gradients of ``accum_steps`` micro-batches, each with its own
contrastive loss over its ``batch_size`` pairs: it does not grow the set of negatives, as
open_clip's ``--accum-freq`` feature cache does.
"""

import hashlib
import json
import math
import os
import random
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np
import open_clip
import torch
import webdataset as wds
from tqdm import tqdm

from vlcurate.pipeline.score.clip import _register

RESUME_KEYS = (
    "shards",
    "model",
    "batch_size",
    "samples_per_epoch",
    "epochs",
    "lr",
    "weight_decay",
    "warmup_steps",
    "accum_steps",
    "workers",
    "seed",
    "precision",
    "shuffle_buffer",
)


@dataclass
class TrainConfig:
    shards: str | list[str] = field(
        default="",
        metadata={"help": "shard URLs: a brace pattern (data/{00000..00099}.tar) or list"},
    )
    model: str = field(default="ViT-B-32", metadata={"help": "open_clip model name or config JSON"})
    output: str = field(default="runs/clip", metadata={"help": "run directory"})
    batch_size: int = field(default=256, metadata={"help": "pairs per micro-batch (contrastive)"})
    samples_per_epoch: int = field(default=100_000, metadata={"help": "samples per epoch"})
    epochs: int = field(default=1, metadata={"help": "epochs"})
    lr: float = field(default=5e-4, metadata={"help": "peak learning rate"})
    weight_decay: float = field(
        default=0.2, metadata={"help": "AdamW decay (not on biases, norms, embeddings, scale)"}
    )
    warmup_steps: int = field(default=100, metadata={"help": "linear warmup, optimizer steps"})
    accum_steps: int = field(
        default=1, metadata={"help": "micro-batches whose gradients make one optimizer step"}
    )
    workers: int = field(default=2, metadata={"help": "DataLoader decode processes"})
    seed: int = field(default=0, metadata={"help": "seed for init, shard sampling, shuffle, aug"})
    checkpoint_every: int = field(default=1000, metadata={"help": "checkpoint every N steps"})
    device: str = field(default="auto", metadata={"help": "cpu, cuda, cuda:N, or auto"})
    precision: str = field(
        default="fp32", metadata={"help": "fp32, bf16 or fp16 (autocast, on CUDA only)"}
    )
    shuffle_buffer: int = field(default=1000, metadata={"help": "sample shuffle buffer size"})
    max_steps: int | None = field(
        default=None, metadata={"help": "stop (and checkpoint) after this many steps in all"}
    )
    progress: bool = field(default=True, metadata={"help": "show a tqdm progress bar"})


def lr_at(step: int, base_lr: float, warmup_steps: int, total_steps: int) -> float:
    """open_clip's ``cosine_lr``: LR of the 0-based optimizer step ``step``."""
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    e, es = step - warmup_steps, max(1, total_steps - warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(e, es) / es)) * base_lr


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """open_clip's split: no weight decay on 1-d parameters, norms, biases and logit_scale."""

    def exclude(n, p):
        return p.ndim < 2 or any(k in n for k in ("bn", "ln", "bias", "logit_scale"))

    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return [
        {"params": [p for n, p in named if exclude(n, p)], "weight_decay": 0.0},
        {"params": [p for n, p in named if not exclude(n, p)], "weight_decay": weight_decay},
    ]


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
    config: TrainConfig,
    preprocess,
    tokenizer,
    epoch: int,
    start: int = 0,
    rank: int = 0,
    world: int = 1,
):
    """The DataLoader for ``epoch``, from micro-batch ``start``, for process ``rank`` of
    ``world``; yields (images (B, 3, H, W), tokens (B, context_length)), B = ``batch_size``.
    Each worker yields up to ceil(batches / workers) batches."""
    global_batch = config.batch_size * world
    batches = config.samples_per_epoch // global_batch
    role = _Role(config.seed, epoch, start, global_batch)
    pipeline = wds.DataPipeline(
        wds.ResampledShards(config.shards, worker_seed=role.shard_seed, deterministic=True),
        wds.tarfile_to_samples(handler=wds.warn_and_continue),
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


def _rng_state() -> dict:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def trim_metrics(path: Path, step: int) -> None:
    """Drop the ``metrics.jsonl`` lines past ``step``, the checkpoint a run resumes from (a run
    killed after its last checkpoint logged steps it will do again)."""
    if path.exists():
        lines = [
            ln for ln in path.read_text().splitlines() if ln and json.loads(ln)["step"] <= step
        ]
        path.write_text("".join(ln + "\n" for ln in lines))


def _device(name: str, local_rank: int = 0) -> str:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return f"cuda:{local_rank}" if name == "cuda" else name


def _distributed(device: str) -> tuple[int, int]:
    """(rank, world size); joins the process group when ``torchrun`` started several."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def _mean_across(value: float, world: int) -> float:
    if world == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    torch.distributed.all_reduce(t)
    return float(t[0]) / world


def train(config: TrainConfig) -> dict:
    """Train (or resume) and return a summary: steps, epoch, last loss, paths, seconds."""
    t_start = time.perf_counter()
    out = Path(config.output)
    ckpt_dir = out / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    device = _device(config.device, int(os.environ.get("LOCAL_RANK", "0")))
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.set_device(device)
    rank, world = _distributed(device)
    lead = rank == 0  # writes metrics and checkpoints
    if config.precision not in ("fp32", "bf16", "fp16"):
        raise ValueError(f"precision must be fp32, bf16 or fp16, not {config.precision!r}")
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.precision)
    global_batch = config.batch_size * world  # pairs per micro-batch, all processes together
    batches = config.samples_per_epoch // global_batch  # micro-batches per epoch
    steps_per_epoch = batches // config.accum_steps
    if steps_per_epoch < 1:
        raise ValueError(
            "samples_per_epoch must hold at least batch_size * world_size * accum_steps samples"
        )
    total = steps_per_epoch * config.epochs

    torch.manual_seed(config.seed)
    random.seed(config.seed)
    np.random.seed(config.seed % 2**32)
    name = _register(config.model)
    model, preprocess, _ = open_clip.create_model_and_transforms(
        name, pretrained=None, device=device, output_dict=True
    )
    tokenizer = open_clip.get_tokenizer(name)
    loss_fn = open_clip.ClipLoss(
        local_loss=True, gather_with_grad=True, cache_labels=True, rank=rank, world_size=world
    )
    optimizer = torch.optim.AdamW(
        param_groups(model, config.weight_decay), lr=config.lr, betas=(0.9, 0.98), eps=1e-6
    )
    core = model  # the CLIP itself; ``model`` is what runs forward (a DDP wrapper when world > 1)
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            core, device_ids=[device] if cuda else None
        )
    scaler = torch.amp.GradScaler("cuda", enabled=cuda and config.precision == "fp16")

    step = 0
    latest = ckpt_dir / "latest.pt"
    metrics_path = out / "metrics.jsonl"
    if latest.exists():
        ckpt = torch.load(latest, map_location=device, weights_only=False)
        saved = ckpt["config"]
        diff = {
            k: (saved.get(k), getattr(config, k))
            for k in RESUME_KEYS
            if saved.get(k) != getattr(config, k)
        }
        if ckpt.get("world_size", 1) != world:
            diff["world_size"] = (ckpt.get("world_size", 1), world)
        if diff:
            raise ValueError(f"{latest} was written with other settings (saved, now): {diff}")
        core.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scaler.load_state_dict(ckpt["scaler"])
        step = ckpt["step"]
        _set_rng_state(ckpt["rng"])
    if lead:
        trim_metrics(metrics_path, step)

    def checkpoint(path_step: bool) -> None:
        if not lead:
            return
        state = {
            "model": core.state_dict(),
            "world_size": world,
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(),
            "step": step,
            "epoch": step // steps_per_epoch,
            "batch_in_epoch": (step % steps_per_epoch) * config.accum_steps,
            "rng": _rng_state(),
            "config": asdict(config),
        }
        if path_step:
            _save(state, ckpt_dir / f"step_{step}.pt")
        _save(state, latest)

    stop = min(total, config.max_steps) if config.max_steps is not None else total
    bar = tqdm(total=total, initial=step, disable=not (config.progress and lead), desc="train")
    loss_value, saved_at = float("nan"), step
    model.train()
    with metrics_path.open("a") if lead else nullcontext() as metrics:
        while step < stop:
            epoch = step // steps_per_epoch
            start = (step % steps_per_epoch) * config.accum_steps
            batches_iter = iter(
                make_loader(config, preprocess, tokenizer, epoch, start, rank, world)
            )
            epoch_end = min(stop, (epoch + 1) * steps_per_epoch)
            while step < epoch_end:
                t0 = time.perf_counter()
                lr = lr_at(step, config.lr, config.warmup_steps, total)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                optimizer.zero_grad(set_to_none=True)
                data_s, losses = 0.0, []
                for micro in range(config.accum_steps):
                    t_data = time.perf_counter()
                    images, tokens = next(batches_iter)  # (B, 3, H, W), (B, context_length)
                    data_s += time.perf_counter() - t_data
                    images = images.to(device, non_blocking=True)
                    tokens = tokens.to(device, non_blocking=True)
                    last = micro == config.accum_steps - 1  # DDP syncs gradients only then
                    sync = nullcontext() if world == 1 or last else model.no_sync()
                    amp = torch.autocast("cuda", dtype=amp_dtype, enabled=cuda and bool(amp_dtype))
                    with sync, amp:
                        o = model(images, tokens)  # features (B, D), logit_scale () = exp(t)
                        # this process's B pairs against the G gathered from all processes
                        loss = loss_fn(o["image_features"], o["text_features"], o["logit_scale"])
                        scaler.scale(loss / config.accum_steps).backward()
                    losses.append(loss.item())
                scaler.step(optimizer)
                scaler.update()
                with torch.no_grad():
                    core.logit_scale.clamp_(0, math.log(100))
                step += 1
                dt = time.perf_counter() - t0
                loss_value = _mean_across(sum(losses) / len(losses), world)  # the global loss
                row = {
                    "step": step,
                    "epoch": epoch,
                    "loss": loss_value,
                    "lr": lr,
                    "logit_scale": float(core.logit_scale.detach().exp()),
                    "samples_per_s": global_batch * config.accum_steps / dt,
                    "data_share": data_s / dt,
                }
                if lead:
                    metrics.write(json.dumps(row) + "\n")
                    metrics.flush()
                bar.update(1)
                bar.set_postfix(loss=f"{loss_value:.3f}", lr=f"{lr:.2e}")
                if config.checkpoint_every and step % config.checkpoint_every == 0:
                    checkpoint(path_step=True)
                    saved_at = step
            del batches_iter  # ends this epoch's workers
    bar.close()
    if saved_at != step:
        checkpoint(path_step=False)
    final = out / "final.pt"
    if lead:
        _save(core.state_dict(), final)
    if world > 1:
        torch.distributed.barrier()
    return {
        "steps": step,
        "total_steps": total,
        "finished": step >= total,
        "epoch": step // steps_per_epoch,
        "loss": loss_value,
        "final": str(final),
        "metrics": str(metrics_path),
        "latest": str(latest),
        "rank": rank,
        "world_size": world,
        "seconds": time.perf_counter() - t_start,
    }
