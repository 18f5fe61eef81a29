"""The select stage's inputs: the download stage's shards and the score stage's scores, checked
against each other and joined into one table (one row per scored sample). Every problem with
them is an :class:`~vlcurate.pipeline.storage.InputError` naming the shard, raised before any
output is written."""

import hashlib
import json

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vlcurate.pipeline import storage
from vlcurate.pipeline.storage import InputError

# img2dataset fields of the shard's parquet that selection and provenance need beside the scores
SHARD_FIELDS = (
    "language",
    "sha256",
    "original_width",
    "original_height",
    "page_url",
    "warc_path",
    "warc_record_id",
    "warc_offset",
)


def shard_names(shards: str) -> list[str]:
    fs, path = fsspec.core.url_to_fs(shards)
    names = sorted(p.rsplit("/", 1)[-1][: -len(".tar")] for p in fs.glob(f"{path}/*.tar"))
    if not names:
        raise InputError(f"no shards (*.tar) in {shards}")
    return names


def _score_marker(scores: str, name: str) -> dict:
    return json.loads(storage.read_text(storage.join(scores, "_done", f"{name}.json")))


def marker_settings(marker: dict) -> dict:
    """The settings a score done marker records (the runner's ``settings``, or the older
    ``_settings``)."""
    return marker["settings"] if "settings_digest" in marker else marker.get("_settings", {})


def score_settings(scores: str, names: list[str]) -> dict:
    """The score stage's done markers for ``names``, checked: every shard scored, with one set
    of settings, and no scores for shards that are not there."""
    fs, path = fsspec.core.url_to_fs(scores)
    done = {p.rsplit("/", 1)[-1][: -len(".json")] for p in fs.glob(f"{path}/_done/*.json")}
    missing = [n for n in names if n not in done]
    if missing:
        raise InputError(
            f"scores missing for {len(missing)} of {len(names)} shards (first: {missing[0]}) "
            f"in {scores}: run `curate score` on these shards first"
        )
    extra = sorted(done - set(names))
    if extra:
        raise InputError(
            f"{scores} holds scores for shards that are not in the shard folder (first: "
            f"{extra[0]}): shards and scores do not match"
        )
    settings = {}
    for name in names:
        mine = marker_settings(_score_marker(scores, name))
        if settings and mine != settings:
            raise InputError(f"{scores}: shard {name} was scored with other settings ({mine})")
        settings = mine
    return settings


def download_settings(shards: str, names: list[str]) -> dict | None:
    """The settings the download stage's done marker of the first shard records (its image
    size and resize mode: how the pool's pictures were framed), or None (shards made
    elsewhere)."""
    path = storage.join(shards, "_done", f"{names[0]}.json") if names else None
    if path is None or not storage.exists(path):
        return None
    marker = json.loads(storage.read_text(path))
    found = marker.get("settings")
    return found if isinstance(found, dict) and "resize_mode" in found else None


def inputs_digest(shards: str, scores: str, names: list[str]) -> str:
    """A digest of every input shard's done markers (img2dataset's ``NNNNN_stats.json``, the
    runner's ``_done/NNNNN.json``) and of its scores' marker: new or rescored inputs change it."""
    h = hashlib.sha256()
    for name in names:
        for folder, file in ((shards, f"{name}_stats.json"), (shards, f"_done/{name}.json")):
            path = storage.join(folder, file)
            if storage.exists(path):
                h.update(f"{file}\n{storage.read_text(path)}\n".encode())
        marker = storage.read_text(storage.join(scores, "_done", f"{name}.json"))
        h.update(f"scores {name}\n{marker}\n".encode())
    return h.hexdigest()[:16]


def check_files(shards: str, scores: str, names: list[str]) -> None:
    """Refuse, naming it, a shard without its parquet sidecar or without its score files."""
    for name in names:
        wanted = [
            (storage.join(shards, f"{name}.parquet"), "its parquet sidecar"),
            (storage.join(scores, "scores", f"{name}.parquet"), "its scores"),
            (storage.join(scores, "metadata", f"{name}.parquet"), "its embedding metadata"),
            (storage.join(scores, "img_emb", f"{name}.npy"), "its image embeddings"),
        ]
        for path, what in wanted:
            if not storage.exists(path):
                raise InputError(f"shard {name}: {what} ({path}) is missing")


def load_table(shards: str, scores: str, names: list[str]) -> pa.Table:
    """Scores of every shard, joined with the shard's own fields (language, sha256, original
    size, provenance), with ``shard`` and ``emb_row`` (row in ``img_emb/NNNNN.npy``, -1: none)."""
    check_files(shards, scores, names)
    parts = [_shard_table(shards, scores, name) for name in names]
    return pa.concat_tables(parts, promote_options="permissive")


def _shard_table(shards: str, scores: str, name: str) -> pa.Table:
    table = storage.read_table(storage.join(scores, "scores", f"{name}.parquet"))
    shard_meta = storage.read_table(storage.join(shards, f"{name}.parquet"))
    if "status" in shard_meta.column_names:
        shard_meta = shard_meta.filter(pc.equal(shard_meta["status"], "success"))
    by_key = {row["key"]: row for row in shard_meta.to_pylist()}
    keys = table["key"].to_pylist()
    unknown = [k for k in keys if k not in by_key]
    if unknown or len(keys) != len(by_key):
        raise InputError(
            f"shard {name}: its scores ({len(keys)} samples) and its parquet ({len(by_key)} "
            f"downloaded samples) do not match"
            + (f"; key {unknown[0]} is not in the shard" if unknown else "")
            + ": were the shards downloaded again after scoring?"
        )
    for field in SHARD_FIELDS:
        values = [by_key[k].get(field) for k in keys]
        table = table.append_column(field, pa.array(values))
    meta = storage.read_table(storage.join(scores, "metadata", f"{name}.parquet"), columns=["key"])
    emb_row = {k: i for i, k in enumerate(meta["key"].to_pylist())}
    table = table.append_column("emb_row", pa.array([emb_row.get(k, -1) for k in keys], pa.int64()))
    return table.append_column("shard", pa.array([name] * len(keys), pa.string()))


def load_embeddings(scores: str, names: np.ndarray, emb_rows: np.ndarray) -> np.ndarray:
    """Image embeddings (float32, n x d) of the rows named by ``(shard name, emb_row)``."""
    out = None
    for name in np.unique(names):
        here = np.flatnonzero(names == name)
        with fsspec.open(storage.join(scores, "img_emb", f"{name}.npy"), "rb") as f:
            emb = np.load(f)
        if out is None:
            out = np.zeros((len(names), emb.shape[1]), dtype=np.float32)
        out[here] = emb[emb_rows[here]]
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)
