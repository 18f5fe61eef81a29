"""A run folder's bookkeeping, shared by both trainers: checkpoints written whole (temporary
name, then rename), the settings a resume must share with its checkpoint, the RNG states, and
``metrics.jsonl`` (one line per optimizer step, cut back to the step a run resumes from)."""

import json
import os
import random
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch


def save(obj, path: Path) -> None:
    """``torch.save`` under a temporary name, then renamed into place."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_latest(path: Path, config, keys: tuple[str, ...], device: str, **now) -> dict | None:
    """The checkpoint at ``path`` (None when there is none). Raises ValueError when it was
    written with other ``keys`` of ``config``, or other ``now`` values (e.g. ``world_size``),
    than this run's: a resume never mixes two trajectories."""
    if not path.exists():
        return None
    ckpt = torch.load(path, map_location=device, weights_only=False)
    saved, current = ckpt["config"], asdict(config)
    diff = {k: (saved.get(k), current[k]) for k in keys if saved.get(k) != current[k]}
    diff.update({k: (ckpt.get(k, 1), v) for k, v in now.items() if ckpt.get(k, 1) != v})
    if diff:
        raise ValueError(f"{path} was written with other settings (saved, now): {diff}")
    return ckpt


def rng_state() -> dict:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def trim_metrics(path: Path, step: int) -> None:
    """Drop the ``metrics.jsonl`` lines past ``step``, the checkpoint a run resumes from (a run
    killed after its last checkpoint logged steps it will do again)."""
    if path.exists():
        lines = [
            ln for ln in path.read_text().splitlines() if ln and json.loads(ln)["step"] <= step
        ]
        path.write_text("".join(ln + "\n" for ln in lines))


def write_metrics(metrics, row: dict) -> None:
    """One step's line, flushed (a killed run keeps every step it logged)."""
    metrics.write(json.dumps(row) + "\n")
    metrics.flush()
