"""Scorers that read the CLIP image embedding: a trained head loaded from a file, or zero-shot
prompts. Both cost microseconds per image once CLIP has run, so they score every image.

A **head** file is a PyTorch state dict (``.pt``/``.pth``, or ``.safetensors``) of a stack of
``Linear`` layers, in order of their keys (``0.weight``, ``2.weight``, ``layers.0.weight``, ...;
dropout layers leave no keys), as LAION's NSFW and aesthetic heads on CLIP embeddings are
built. ``activation`` goes between the layers (``relu``, or ``none`` for a purely linear stack
like LAION's aesthetic MLP); the output is a probability from one logit (sigmoid) or from two
(softmax, index 1 the positive class), or the raw value with ``output=raw``.

**Zero-shot** compares the image with a positive and a negative prompt through the CLIP text
tower: p = softmax(100 * cosine)[positive], CLIP's usual logit scale. It needs pretrained CLIP
weights to mean anything; with random weights it still runs, for tests.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

ZERO_SHOT_PROMPTS = {
    "watermark": (
        ["a photo with a watermark", "a stock photo with a visible watermark logo"],
        ["a photo without a watermark", "a clean stock photo"],
    ),
    "nsfw": (
        ["an explicit nude photo", "a pornographic image"],
        ["a safe for work photo", "a photo of clothed people or everyday objects"],
    ),
}


class HeadError(ValueError):
    """A head file that cannot be used with this CLIP model: raised before any image is read."""


def _natural(key: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", key)]


def load_state(path: str) -> dict[str, torch.Tensor]:
    if not Path(path).is_file():
        raise HeadError(f"head file not found: {path}")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state


@dataclass
class ClipHead:
    """A head on the L2-normalised CLIP image embedding: ``score_batch(emb) -> p`` per image."""

    path: str = field(default="", metadata={"help": "state dict of the Linear stack"})
    activation: str = field(default="relu", metadata={"help": "between layers: relu or none"})
    output: str = field(default="auto", metadata={"help": "auto (sigmoid/softmax), or raw"})

    def __post_init__(self):
        state = load_state(self.path)
        weights = sorted(
            (k for k, v in state.items() if k.endswith("weight") and v.ndim == 2), key=_natural
        )
        if not weights:
            raise HeadError(f"{self.path}: no Linear weights (2-D '*.weight' tensors) in it")
        layers = []
        for key in weights:
            out_dim, in_dim = state[key].shape
            layer = torch.nn.Linear(in_dim, out_dim, bias=key[: -len("weight")] + "bias" in state)
            layer.weight.data.copy_(state[key].float())
            if layer.bias is not None:
                layer.bias.data.copy_(state[key[: -len("weight")] + "bias"].float())
            layers += [layer, torch.nn.ReLU()] if self.activation == "relu" else [layer]
        if self.activation == "relu":
            layers.pop()
        self.net = torch.nn.Sequential(*layers).eval()
        self.input_dim = self.net[0].in_features
        self.outputs = self.net[-1].out_features
        if self.output == "auto" and self.outputs not in (1, 2):
            raise HeadError(f"{self.path}: {self.outputs} outputs; a probability needs 1 or 2")
        self.name = f"head:{Path(self.path).name}"

    def check(self, dim: int) -> None:
        if dim != self.input_dim:
            raise HeadError(
                f"{self.path} reads {self.input_dim}-d embeddings; this CLIP gives {dim}-d"
            )

    @torch.inference_mode()
    def score_batch(self, image_emb: np.ndarray) -> np.ndarray:
        out = self.net(torch.as_tensor(np.asarray(image_emb, dtype=np.float32)))
        if self.output == "raw":
            return out[:, 0].numpy()
        if self.outputs == 1:
            return torch.sigmoid(out[:, 0]).numpy()
        return torch.softmax(out, dim=-1)[:, 1].numpy()


@dataclass
class ZeroShot:
    """p(positive) from CLIP prompts, averaged within each side (prompt ensembling)."""

    clip: object  # a ClipScorer
    positive: list[str]
    negative: list[str]
    scale: float = 100.0

    def __post_init__(self):
        pos = self.clip.encode_texts(self.positive).mean(0)
        neg = self.clip.encode_texts(self.negative).mean(0)
        prompts = torch.stack([neg, pos])
        self._prompts = torch.nn.functional.normalize(prompts, dim=-1).cpu()
        self.name = f"zero-shot:{self.clip.model}"

    def check(self, dim: int) -> None:
        pass

    @torch.inference_mode()
    def score_batch(self, image_emb: np.ndarray) -> np.ndarray:
        emb = torch.as_tensor(np.asarray(image_emb, dtype=np.float32))
        return torch.softmax(self.scale * emb @ self._prompts.T, dim=-1)[:, 1].numpy()


def embedding_scorer(spec: str, clip, task: str):
    """``head:PATH`` or ``zero-shot`` -> a scorer over image embeddings, checked against the
    CLIP model's width now, before any image is read. ``task`` picks the zero-shot prompts."""
    if spec.startswith("head:"):
        scorer = ClipHead(spec.removeprefix("head:"))
    elif spec == "zero-shot":
        positive, negative = ZERO_SHOT_PROMPTS[task]
        scorer = ZeroShot(clip, positive, negative)
    else:
        raise HeadError(f"unknown {task} scorer {spec!r}")
    scorer.check(clip.dim)
    return scorer
