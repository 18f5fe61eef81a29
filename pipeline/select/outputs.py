"""The select stage's corpus-wide outputs, written once every final shard is done, each under a
temporary name renamed when whole: ``selection.parquet`` (every sample, its reason, what it
duplicates, where it went), ``uids.npy`` (DataComp's uid subset) and ``manifest.json``."""

import json
import re
from dataclasses import asdict

import fsspec
import numpy as np
import pyarrow as pa

from vlcurate.pipeline import storage
from vlcurate.pipeline.stage import DONE
from vlcurate.schemas import select as reasons

FINAL_SHARD = re.compile(r"^(\d{5,})\.(tar|parquet)$")
FINAL_MARKER = re.compile(r"^(\d{5,})\.json$")


def uid_array(uids: list[str]) -> np.ndarray:
    """DataComp's subset format: each 128-bit hex uid as two uint64, sorted."""
    pairs = sorted((int(u[:16], 16), int(u[16:32], 16)) for u in uids)
    return np.array(pairs, dtype=np.dtype("u8,u8"))


def write_selection(output: str, table: pa.Table) -> None:
    with storage.parquet_writer(storage.join(output, "selection.parquet"), table.schema) as w:
        w.write_table(table)
    kept = table.filter(table["reason"].is_null())["uid"].to_pylist()
    with storage.atomic_open(storage.join(output, "uids.npy")) as f:
        np.save(f, uid_array(kept))


def manifest(recipe, settings: dict, counts: dict, facts: dict, shards: list[dict], where: dict):
    """``where``: the absolute input folders (``shards``, ``scores``)."""
    return {
        "version": reasons.SCHEMA_VERSION,
        "recipe": {
            "name": recipe.name,
            "version": recipe.version,
            "source": recipe.source,
            "select": asdict(recipe.select),
        },
        "models": settings,
        "inputs": where,
        "counts": {k: counts[k] for k in ("in", "kept", "dropped")},
        "clip_threshold": facts["clip_threshold"],
        "shards": [{k: s[k] for k in ("name", "samples", "bytes", "sha256")} for s in shards],
        "uids": "uids.npy",
        "selection": "selection.parquet",
    }


def write_manifest(output: str, content: dict) -> None:
    text = json.dumps(content, indent=2) + "\n"
    storage.write_text_atomic(storage.join(output, "manifest.json"), text)


def remove_other_shards(output: str, names: list[str]) -> int:
    """Delete the final shards (tar, parquet, done marker) in ``output`` that are not ``names``:
    left by a run of another selection (one that kept more, or was killed before its first
    marker). Returns how many shards went."""
    fs, path = fsspec.core.url_to_fs(output)
    if not fs.exists(path):
        return 0
    keep, gone = set(names), set()
    for folder, pattern in ((path, FINAL_SHARD), (f"{path}/{DONE}", FINAL_MARKER)):
        if not fs.exists(folder):
            continue
        for entry in fs.ls(folder, detail=False):
            match = pattern.match(entry.rsplit("/", 1)[-1])
            if match and match.group(1) not in keep:
                fs.rm(entry)
                gone.add(match.group(1))
    return len(gone)
