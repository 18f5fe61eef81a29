"""The export stage's input: a select stage's final output (``OUTPUT/final``), recognised by
its ``manifest.json`` (written last, once every final shard is whole) and checked against its
shards before any work. Values are read from each shard's parquet sidecar (the samples' json,
row for row), so no tar is opened."""

import hashlib
import json
import re

from vlcurate.pipeline import storage
from vlcurate.schemas import select as select_schema

MANIFEST = "manifest.json"
CLIP_COLUMN = re.compile(r"^clip_[a-z0-9_]+_sim$")  # the score stage's column, named by model


class FinalInputError(storage.InputError):
    """The input is not a (whole) final output of the select stage."""


def read_manifest(folder: str) -> dict:
    """The final output's manifest, checked: it is the select stage's and lists shards."""
    if not storage.exists(folder):
        raise FinalInputError(f"export: the input {folder} does not exist")
    if not storage.isdir(folder):
        raise FinalInputError(f"export: the input {folder} is a file, not a final output folder")
    path = storage.join(folder, MANIFEST)
    if not storage.exists(path):
        raise FinalInputError(
            f"export: {folder} is not a final output (no {MANIFEST}): pass the folder "
            "`curate select` wrote (OUT/final), after it finished"
        )
    try:
        manifest = json.loads(storage.read_text(path))
    except ValueError as e:
        raise FinalInputError(f"export: {path} is not JSON ({e})") from None
    family = select_schema.SCHEMA_VERSION.split("/")[0] + "/"
    version = manifest.get("version") if isinstance(manifest, dict) else None
    if not str(version).startswith(family) or not isinstance(manifest.get("shards"), list):
        raise FinalInputError(
            f"export: {path} is not a select stage's manifest (version {version!r}, "
            f"expected {select_schema.SCHEMA_VERSION})"
        )
    return manifest


def manifest_digest(folder: str) -> str:
    """What decides the release's contents: the manifest (each shard's sha256, the recipe)."""
    text = storage.read_text(storage.join(folder, MANIFEST))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def shard_paths(folder: str, manifest: dict) -> dict[str, str]:
    """``name -> NNNNN.parquet`` of every shard the manifest lists, each checked to exist."""
    paths = {}
    for shard in manifest["shards"]:
        name = shard.get("name") if isinstance(shard, dict) else None
        if not isinstance(name, str) or not name.isdigit():
            raise FinalInputError(f"export: {folder}/{MANIFEST} lists a shard without a name")
        path = storage.join(folder, f"{name}.parquet")
        if not storage.exists(path):
            raise FinalInputError(
                f"export: final shard {name}'s parquet sidecar ({path}) is missing: "
                "was the final output moved, or is it partly deleted?"
            )
        paths[name] = path
    return paths


def clip_column(names: list[str], shard: str) -> str | None:
    """The one CLIP similarity column of a final shard (None in a shard with no samples)."""
    found = [n for n in names if CLIP_COLUMN.match(n)]
    if len(found) > 1:
        raise FinalInputError(f"export: final shard {shard} has two CLIP columns: {found}")
    return found[0] if found else None


def read_shard(path: str, name: str, samples: int | None) -> list[dict]:
    """The samples of final shard ``name``, checked against the manifest's count."""
    table = storage.read_table(path)
    if samples is not None and table.num_rows != samples:
        raise FinalInputError(
            f"export: final shard {name} holds {table.num_rows} samples, its manifest "
            f"{samples}: the final output changed after select wrote it"
        )
    return table.to_pylist()
