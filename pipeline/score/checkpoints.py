"""Local CLIP checkpoints by name: ``--pretrained NAME`` finds ``NAME`` here before asking
open_clip for a tag of that name.

An entry is ``$CURATE_CACHE/checkpoints/NAME.json`` (default ``~/.cache/curate``), written by
whatever trained the weights, with ``weights`` (a file open_clip loads), ``model`` (the open_clip
config it belongs to) and ``about`` (one line for reports: where the weights come from).
"""

import json
from pathlib import Path

from vlcurate.pipeline.storage import cache_home, write_text_atomic


class CheckpointError(RuntimeError):
    """A registered checkpoint whose weights are gone."""


def registry() -> Path:
    return cache_home() / "checkpoints"


def register(name: str, weights: str, model: str, about: str) -> Path:
    entry = registry() / f"{name}.json"
    record = {"weights": str(Path(weights).resolve()), "model": model, "about": about}
    write_text_atomic(str(entry), json.dumps(record, indent=2) + "\n")
    return entry


def lookup(name: str | None) -> dict | None:
    """The entry registered as ``name``, or None (a tag, a path, or random weights)."""
    if not name or "/" in name or name.endswith((".pt", ".bin", ".safetensors")):
        return None
    entry = registry() / f"{name}.json"
    return json.loads(entry.read_text()) if entry.exists() else None


def resolve(pretrained: str | None) -> str | None:
    """A registered name -> its weights file; anything else as given."""
    entry = lookup(pretrained)
    if entry is None:
        return pretrained
    if not Path(entry["weights"]).exists():
        raise CheckpointError(
            f"the local checkpoint {pretrained!r} names {entry['weights']}, which is gone: "
            f"train it again, or delete {registry() / (pretrained + '.json')}"
        )
    return entry["weights"]


def names() -> list[str]:
    return sorted(p.stem for p in registry().glob("*.json")) if registry().exists() else []
