"""A small CLIP training loop over img2dataset-style WebDataset shards, with open_clip models.

``train(TrainConfig(...))`` streams ``key.jpg``/``key.txt`` pairs (:mod:`.stream`), trains with
open_clip's ``ClipLoss`` (AdamW, linear warmup then cosine per optimizer step, :mod:`.optim`;
learnable temperature clamped to at most 100), and writes into ``output``:

- ``metrics.jsonl``: one line per optimizer step;
- ``checkpoints/step_N.pt`` every ``checkpoint_every`` steps, and ``checkpoints/latest.pt``
  (written to a temporary name, then renamed) at those steps and when the run stops;
- ``final.pt``: the model's state dict, which ``open_clip.create_model_and_transforms(model,
  pretrained="final.pt")`` loads.

An epoch is ``samples_per_epoch // batch_size`` micro-batches, each epoch its own seeded stream.

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

import math
import random
import time
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path

import numpy as np
import open_clip
import torch
from tqdm import tqdm

from vlcurate.pipeline.score.clip import _register
from vlcurate.pipeline.train import checkpoint, distributed
from vlcurate.pipeline.train.clip_config import RESUME_KEYS, TrainConfig
from vlcurate.pipeline.train.optim import lr_at, param_groups, set_lr
from vlcurate.pipeline.train.stream import make_loader

__all__ = ["RESUME_KEYS", "ClipRun", "TrainConfig", "lr_at", "train"]


class ClipRun:
    """One training process: the model, its optimiser and grad scaler, the step counter, and
    the run folder's checkpoints and metrics."""

    def __init__(self, config: TrainConfig):
        self.config, self.out = config, Path(config.output)
        (self.out / "checkpoints").mkdir(parents=True, exist_ok=True)
        self.latest = self.out / "checkpoints" / "latest.pt"
        self.metrics_path = self.out / "metrics.jsonl"
        self.device = distributed.train_device(config.device)
        self.cuda = self.device.startswith("cuda")
        if self.cuda:
            torch.cuda.set_device(self.device)
        self.rank, self.world = distributed.join(self.device)
        self.lead = self.rank == 0  # writes metrics and checkpoints
        self.global_batch = config.batch_size * self.world  # pairs per micro-batch, all processes
        batches = config.samples_per_epoch // self.global_batch  # micro-batches per epoch
        self.steps_per_epoch = batches // config.accum_steps
        if self.steps_per_epoch < 1:
            raise ValueError(
                "samples_per_epoch must hold at least batch_size * world_size * accum_steps samples"
            )
        self.total = self.steps_per_epoch * config.epochs
        self.step = 0
        self._build()

    def _build(self) -> None:
        """The seeded model, its loss, optimiser and scaler (in the order that fixes the RNG)."""
        config = self.config
        torch.manual_seed(config.seed)
        random.seed(config.seed)
        np.random.seed(config.seed % 2**32)
        name = _register(config.model)
        self.core, self.preprocess, _ = open_clip.create_model_and_transforms(
            name, pretrained=None, device=self.device, output_dict=True
        )
        self.tokenizer = open_clip.get_tokenizer(name)
        self.loss_fn = open_clip.ClipLoss(
            local_loss=True,
            gather_with_grad=True,
            cache_labels=True,
            rank=self.rank,
            world_size=self.world,
        )
        self.optimizer = torch.optim.AdamW(
            param_groups(self.core, config.weight_decay), lr=config.lr, betas=(0.9, 0.98), eps=1e-6
        )
        self.model = self.core  # what runs forward: the CLIP, or its DDP wrapper
        if self.world > 1:
            ids = [self.device] if self.cuda else None
            self.model = torch.nn.parallel.DistributedDataParallel(self.core, device_ids=ids)
        fp16 = self.cuda and config.precision == "fp16"
        self.scaler = torch.amp.GradScaler("cuda", enabled=fp16)
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.precision)

    def resume(self) -> None:
        """Continue from ``checkpoints/latest.pt`` when there is one (same settings only)."""
        ckpt = checkpoint.load_latest(
            self.latest, self.config, RESUME_KEYS, self.device, world_size=self.world
        )
        if ckpt is not None:
            self.core.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scaler.load_state_dict(ckpt["scaler"])
            self.step = ckpt["step"]
            checkpoint.set_rng_state(ckpt["rng"])
        if self.lead:
            checkpoint.trim_metrics(self.metrics_path, self.step)

    def save_checkpoint(self, numbered: bool) -> None:
        """``latest.pt`` (and ``step_N.pt`` when ``numbered``), by the lead process only."""
        if not self.lead:
            return
        state = {
            "model": self.core.state_dict(),
            "world_size": self.world,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "epoch": self.step // self.steps_per_epoch,
            "batch_in_epoch": (self.step % self.steps_per_epoch) * self.config.accum_steps,
            "rng": checkpoint.rng_state(),
            "config": asdict(self.config),
        }
        if numbered:
            checkpoint.save(state, self.out / "checkpoints" / f"step_{self.step}.pt")
        checkpoint.save(state, self.latest)

    def _backward(self, images: torch.Tensor, tokens: torch.Tensor, last: bool) -> float:
        """One micro-batch's loss, its gradients added (DDP syncs them only on the ``last``)."""
        images = images.to(self.device, non_blocking=True)  # (B, 3, H, W)
        tokens = tokens.to(self.device, non_blocking=True)  # (B, context_length)
        sync = nullcontext() if self.world == 1 or last else self.model.no_sync()
        autocast = self.cuda and bool(self.amp_dtype)
        amp = torch.autocast("cuda", dtype=self.amp_dtype, enabled=autocast)
        with sync, amp:
            o = self.model(images, tokens)  # features (B, D), logit_scale () = exp(t)
            # this process's B pairs against the G gathered from all processes
            loss = self.loss_fn(o["image_features"], o["text_features"], o["logit_scale"])
            self.scaler.scale(loss / self.config.accum_steps).backward()
        return loss.item()

    def optimizer_step(self, batches, epoch: int) -> dict:
        """One optimizer step over ``accum_steps`` micro-batches; returns its metrics row."""
        config = self.config
        t0 = time.perf_counter()
        lr = lr_at(self.step, config.lr, config.warmup_steps, self.total)
        set_lr(self.optimizer, lr)
        self.optimizer.zero_grad(set_to_none=True)
        data_s, losses = 0.0, []
        for micro in range(config.accum_steps):
            t_data = time.perf_counter()
            images, tokens = next(batches)
            data_s += time.perf_counter() - t_data
            losses.append(self._backward(images, tokens, last=micro == config.accum_steps - 1))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        with torch.no_grad():
            self.core.logit_scale.clamp_(0, math.log(100))
        self.step += 1
        dt = time.perf_counter() - t0
        return {
            "step": self.step,
            "epoch": epoch,
            "loss": distributed.mean_across(sum(losses) / len(losses), self.world),  # global
            "lr": lr,
            "logit_scale": float(self.core.logit_scale.detach().exp()),
            "samples_per_s": self.global_batch * config.accum_steps / dt,
            "data_share": data_s / dt,
        }

    def fit(self) -> float:
        """Train to ``max_steps`` (or the end), checkpoint, write ``final.pt``; the last loss."""
        config, loss, saved_at = self.config, float("nan"), self.step
        stop = self.total if config.max_steps is None else min(self.total, config.max_steps)
        show = config.progress and self.lead
        bar = tqdm(total=self.total, initial=self.step, disable=not show, desc="train")
        self.model.train()
        with self.metrics_path.open("a") if self.lead else nullcontext() as metrics:
            while self.step < stop:
                epoch = self.step // self.steps_per_epoch
                start = (self.step % self.steps_per_epoch) * config.accum_steps
                loader = make_loader(
                    config, self.preprocess, self.tokenizer, epoch, start, self.rank, self.world
                )
                batches = iter(loader)
                while self.step < min(stop, (epoch + 1) * self.steps_per_epoch):
                    row = self.optimizer_step(batches, epoch)
                    loss = row["loss"]
                    if self.lead:
                        checkpoint.write_metrics(metrics, row)
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.3f}", lr=f"{row['lr']:.2e}")
                    if config.checkpoint_every and self.step % config.checkpoint_every == 0:
                        self.save_checkpoint(numbered=True)
                        saved_at = self.step
                del batches, loader  # ends this epoch's workers
        bar.close()
        if saved_at != self.step:
            self.save_checkpoint(numbered=False)
        if self.lead:
            checkpoint.save(self.core.state_dict(), self.out / "final.pt")
        distributed.barrier(self.world)
        return loss


def train(config: TrainConfig) -> dict:
    """Train (or resume) and return a summary: steps, epoch, last loss, paths, seconds."""
    t_start = time.perf_counter()
    run = ClipRun(config)
    run.resume()
    loss = run.fit()
    return {
        "steps": run.step,
        "total_steps": run.total,
        "finished": run.step >= run.total,
        "epoch": run.step // run.steps_per_epoch,
        "loss": loss,
        "final": str(run.out / "final.pt"),
        "metrics": str(run.metrics_path),
        "latest": str(run.latest),
        "rank": run.rank,
        "world_size": run.world,
        "seconds": time.perf_counter() - t_start,
    }
