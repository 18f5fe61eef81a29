"""The select stage: a recipe's thresholds, near-duplicate removal, final shards, manifest,
DataComp-style uid list and report.

1. join every shard's scores with its own fields (:mod:`vlcurate.pipeline.select.inputs`), checking
the
   two folders match;
2. the recipe's rules (:mod:`vlcurate.pipeline.select.rules`) name a reason for each sample they
drop; 3. among the samples they keep, duplicates go: exact (sha256), then perceptual (pHash), then
   semantic (CLIP image embeddings, faiss); the sample with the highest CLIP similarity of each
   group stays (:mod:`vlcurate.pipeline.select.dedup`);
4. ``selection.parquet`` (every sample, its reason, what it duplicates, where it went), the
   final shards (:mod:`vlcurate.pipeline.select.writer`), ``uids.npy``, ``manifest.json``,
   ``stats.json`` and ``report.html``.

The selection itself is cheap and deterministic, so a rerun recomputes it and writes only the
shards without a done marker: a killed run resumes.
"""

import json
from collections.abc import Callable
from dataclasses import asdict

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from vlcurate.pipeline import storage
from vlcurate.pipeline.recipe import Recipe
from vlcurate.pipeline.select import dedup, inputs, rules, writer
from vlcurate.pipeline.select.config import SelectConfig
from vlcurate.pipeline.stats import StageStats
from vlcurate.schemas import select as reasons


def check_recipe(config: SelectConfig, settings: dict, clip_column: str | None) -> None:
    """Refuse, before any work, a recipe the scores cannot serve."""
    if clip_column is None:
        raise inputs.InputError("the scores have no CLIP similarity column (clip_*_sim)")
    model = settings.get("model")
    if config.clip_model and model and _norm(config.clip_model) != _norm(model):
        raise inputs.InputError(
            f"the recipe's CLIP thresholds are for {config.clip_model}, but the scores come "
            f"from {model}: score with --model {config.clip_model}, or use a recipe made for "
            f"{model}"
        )
    needs = [
        ("nsfw", config.nsfw_max is not None, "sets nsfw_max"),
        ("watermark", config.watermark_max is not None, "sets watermark_max"),
        ("faces", config.faces != "keep", f"has the face policy {config.faces}"),
    ]
    for scorer, needed, what in needs:
        if needed and settings.get(scorer) in (None, "none"):
            raise inputs.InputError(f"the recipe {what}, but scoring ran with --{scorer} none")


def select(
    shards: str,
    scores: str,
    recipe: Recipe,
    output: str,
    *,
    funnel: list[tuple[str, dict]] = (),
    semantic: Callable | None = None,
    progress: bool = True,
    report: str | None = "",
) -> dict:
    """Run the stage; returns its stats. ``report``: where report.html goes ("": in
    ``output``; None: no report). ``semantic(rows, rank, dedup_config, scores) ->
    duplicate_of`` replaces the in-memory semantic dedup (the Spark job passes its own)."""
    config = recipe.select
    names = inputs.shard_names(shards)
    settings = inputs.score_settings(scores, names)
    table = inputs.load_table(shards, scores, names)
    clip_column = next((c for c in table.column_names if c.startswith("clip_")), None)
    check_recipe(config, settings, clip_column)
    reason, facts = rules.rule_reasons(table, clip_column, config)
    reason = np.array(reason, dtype=object)
    rank = ranking(table, clip_column)
    duplicate_of = remove_duplicates(table, scores, reason, rank, config, semantic)
    table = plan(table, reason, duplicate_of, rank, config.samples_per_shard)
    storage.makedirs(output)
    with storage.parquet_writer(storage.join(output, "selection.parquet"), table.schema) as w:
        w.write_table(table)
    markers = write_shards(table, shards, output, config.faces, progress)
    stats = write_outputs(table, recipe, settings, facts, markers, output, shards, scores)
    if report is not None:
        from vlcurate.pipeline.select.report import write_selection_report

        path = report or storage.join(output, "report.html")
        write_selection_report(path, table, recipe, settings, facts, funnel, stats, shards)
    return stats


def ranking(table: pa.Table, clip_column: str) -> np.ndarray:
    """0 for the highest CLIP similarity, and so on; ties (and missing scores, last) by uid."""
    clip = rules._floats(table, clip_column).astype(np.float64)
    order = np.lexsort(
        (
            np.array(table["uid"].to_pylist(), dtype=object).astype(str),
            np.nan_to_num(-clip, nan=np.inf),
        )
    )
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank


def remove_duplicates(table, scores, reason, rank, config: SelectConfig, semantic) -> np.ndarray:
    """Mark duplicates among the rows ``reason`` keeps (in place); returns ``duplicate_of``
    (row number of the better sample, -1 for none) for every row."""
    d = config.dedup
    duplicate_of = np.full(len(reason), -1, dtype=np.int64)

    def mark(name: str, find) -> None:  # find(rows) -> duplicate_of, positions within rows
        rows = np.flatnonzero(reason == None)  # noqa: E711 (elementwise)
        if len(rows) < 2:
            return
        found = find(rows)
        hit = found >= 0
        reason[rows[hit]] = name
        duplicate_of[rows[hit]] = rows[found[hit]]

    if d.exact:
        mark(
            reasons.DUPLICATE_EXACT,
            lambda rows: dedup.exact_duplicates(table["sha256"].take(rows).to_pylist(), rank[rows]),
        )
    if d.phash_max_distance is not None:
        mark(reasons.DUPLICATE_PHASH, lambda rows: _phash(table, scores, rows, rank[rows], d))
    if d.semantic_min_cosine is not None:
        find = semantic or _semantic
        mark(reasons.DUPLICATE_SEMANTIC, lambda rows: find(table.take(rows), rank[rows], d, scores))
    return duplicate_of


def _embeddings(rows: pa.Table, scores: str) -> np.ndarray:
    names = np.array(rows["shard"].to_pylist(), dtype=object)
    return inputs.load_embeddings(scores, names, rows["emb_row"].to_numpy())


def _phash(table, scores, rows, rank, d) -> np.ndarray:
    hashes = table["phash"].take(rows).to_pylist()
    where = np.flatnonzero([h is not None for h in hashes])
    out = np.full(len(rows), -1, dtype=np.int64)
    if len(where) < 2:
        return out
    emb = None
    if d.phash_min_cosine is not None:
        emb = _embeddings(table.take(rows[where]), scores)
    found = dedup.phash_duplicates(
        [hashes[i] for i in where], rank[where], d.phash_max_distance, emb, d.phash_min_cosine
    )
    out[where] = np.where(found >= 0, where[np.maximum(found, 0)], -1)
    return out


def _semantic(rows: pa.Table, rank: np.ndarray, d, scores: str) -> np.ndarray:
    return dedup.semantic_duplicates(
        _embeddings(rows, scores),
        rank,
        d.semantic_min_cosine,
        d.neighbors,
        d.index,
        d.flat_below,
        d.nprobe,
    )


def plan(table, reason, duplicate_of, rank, per_shard: int) -> pa.Table:
    """The selection: reasons, duplicate uids, ranks, and for kept samples their final shard and
    key (in input order, ``per_shard`` to a shard; keys as img2dataset makes them)."""
    uids = table["uid"].to_pylist()
    kept = np.flatnonzero(reason == None)  # noqa: E711
    width = max(4, len(str(per_shard - 1)))
    final_shard = np.full(len(reason), None, dtype=object)
    final_key = np.full(len(reason), None, dtype=object)
    for position, row in enumerate(kept):
        shard, offset = divmod(position, per_shard)
        final_shard[row] = f"{shard:05d}"
        final_key[row] = f"{shard:05d}{offset:0{width}d}"
    columns = {
        "reason": pa.array(list(reason), pa.string()),
        "duplicate_of": pa.array([uids[j] if j >= 0 else None for j in duplicate_of], pa.string()),
        "rank": pa.array(rank, pa.int64()),
        "final_shard": pa.array(list(final_shard), pa.string()),
        "final_key": pa.array(list(final_key), pa.string()),
    }
    for name, values in columns.items():
        table = table.append_column(name, values)
    return table


def write_shards(table: pa.Table, shards: str, output: str, faces: str, progress: bool):
    kept = table.filter(table["final_shard"].is_valid()).to_pylist()
    groups: dict[str, list] = {}
    for row in kept:
        groups.setdefault(row["final_shard"], []).append(row)
    markers = []
    for name in tqdm(
        sorted(groups), desc="select: writing shards", unit="shard", disable=not progress
    ):
        markers.append(writer.write_shard(name, groups[name], shards, output, faces))
    return markers


def uid_array(uids: list[str]) -> np.ndarray:
    """DataComp's subset format: each 128-bit hex uid as two uint64, sorted."""
    pairs = sorted((int(u[:16], 16), int(u[16:32], 16)) for u in uids)
    return np.array(pairs, dtype=np.dtype("u8,u8"))


def write_outputs(table, recipe, settings, facts, markers, output, shards, scores) -> dict:
    stats = StageStats("select")
    for r in table["reason"].to_pylist():
        stats.main.keep() if r is None else stats.main.drop(r)
    stats.extra["shards"] = len(markers)
    stats.extra["faces_blurred"] = sum(m["faces_blurred"] for m in markers)
    if sum(m["samples"] for m in markers) != stats.main.kept:
        raise AssertionError("the final shards do not hold every kept sample")
    kept_uids = table.filter(table["reason"].is_null())["uid"].to_pylist()
    with storage.atomic_open(storage.join(output, "uids.npy")) as f:
        np.save(f, uid_array(kept_uids))
    result = stats.to_dict(version=reasons.SCHEMA_VERSION, recipe=recipe.ident, **facts)
    text = json.dumps(result, indent=2) + "\n"
    storage.write_text_atomic(storage.join(output, "stats.json"), text)
    manifest = {
        "version": reasons.SCHEMA_VERSION,
        "recipe": {
            "name": recipe.name,
            "version": recipe.version,
            "source": recipe.source,
            "select": asdict(recipe.select),
        },
        "models": settings,
        "inputs": {"shards": storage.absolute(shards), "scores": storage.absolute(scores)},
        "counts": {"in": result["in"], "kept": result["kept"], "dropped": result["dropped"]},
        "clip_threshold": facts["clip_threshold"],
        "shards": [{k: m[k] for k in ("name", "samples", "bytes", "sha256")} for m in markers],
        "uids": "uids.npy",
        "selection": "selection.parquet",
    }
    storage.write_text_atomic(
        storage.join(output, "manifest.json"), json.dumps(manifest, indent=2) + "\n"
    )
    return result


def _norm(model: str) -> str:
    return model.lower().replace("/", "-").replace("_", "-")


def read_selection(output: str) -> pa.Table:
    return pq.read_table(storage.join(output, "selection.parquet"))
