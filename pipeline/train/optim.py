"""The optimiser and its schedule, shared by both trainers: AdamW parameter groups and
open_clip's warmup-then-cosine learning rate."""

import math

import torch


def lr_at(step: int, base_lr: float, warmup_steps: int, total_steps: int) -> float:
    """open_clip's ``cosine_lr``: LR of the 0-based optimizer step ``step``."""
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    e, es = step - warmup_steps, max(1, total_steps - warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(e, es) / es)) * base_lr


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """open_clip's split: no weight decay on 1-d parameters, norms, biases and logit_scale."""

    def exclude(n, p):
        return p.ndim < 2 or any(k in n for k in ("bn", "ln", "bias", "logit_scale"))

    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return [
        {"params": [p for n, p in named if exclude(n, p)], "weight_decay": 0.0},
        {"params": [p for n, p in named if not exclude(n, p)], "weight_decay": weight_decay},
    ]
