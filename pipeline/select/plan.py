"""The selection, a pass over the whole corpus: samples that match an eval image go first
(:mod:`vlcurate.pipeline.select.decontaminate`); the recipe's rules
(:mod:`vlcurate.pipeline.select.rules`) and DataComp's image-based filter
(:mod:`vlcurate.pipeline.select.image_filter`) name a reason for each sample they drop; among the
samples they keep, duplicates go (exact, then pHash, then semantic; the best-ranked sample of
each group stays, :mod:`vlcurate.pipeline.select.dedup`); the kept samples are laid out in
final shards. It reads the inputs and writes nothing, so it can be computed, and checked, before
anything is written under the output."""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from vlcurate.pipeline.select import balance, decontaminate, dedup, image_filter, inputs, rules
from vlcurate.pipeline.select.config import SelectConfig
from vlcurate.schemas import select as reasons


@dataclass
class Selection:
    """Every sample with its ``reason`` (null: kept), ``duplicate_of``, ``rank``,
    ``final_shard`` and ``final_key``; ``facts`` (the CLIP threshold applied)."""

    table: pa.Table
    facts: dict
    clip_column: str
    per_shard: int

    @property
    def kept_rows(self) -> np.ndarray:
        return np.flatnonzero(self.table["reason"].is_null().to_numpy(zero_copy_only=False))

    def shard_names(self) -> list[str]:
        return [f"{i:05d}" for i in range(-(-len(self.kept_rows) // self.per_shard))]

    def rows_of(self, shard: str) -> list[dict]:
        """The rows of final shard ``shard``, in order."""
        start = int(shard) * self.per_shard
        return self.table.take(self.kept_rows[start : start + self.per_shard]).to_pylist()


def select_samples(
    table: pa.Table,
    scores: str,
    settings: dict,
    config: SelectConfig,
    semantic=None,
    framing: dict | None = None,
) -> Selection:
    """The selection of the joined input ``table`` (:func:`inputs.load_table`); ``settings``:
    the score stage's; ``framing``: the download's (:func:`inputs.download_settings`), how
    reference and eval shards are framed. ``semantic`` replaces the in-memory semantic dedup
    (see :func:`remove_duplicates`)."""
    clip_column = next((c for c in table.column_names if c.startswith("clip_")), None)
    check_recipe(config, settings, clip_column)
    reason, facts = rules.rule_reasons(table, clip_column, config)
    reason = np.array(reason, dtype=object)
    columns: dict = {}
    for rule, step in (
        (config.decontaminate, decontaminate.mark_eval_duplicates),  # before the rules' reasons
        (config.image_filter, image_filter.filter_by_clusters),  # after them
    ):
        if rule is not None:
            found, more = step(table, scores, settings, reason, rule, framing)
            columns.update(found)
            facts.update(more)
    rank = ranking(table, clip_column)
    duplicate_of = remove_duplicates(table, scores, reason, rank, config, semantic)
    if config.balance is not None:  # MetaCLIP balances last
        facts.update(balance.balance_kept(table, reason, config.balance))
    table = lay_out(table, reason, duplicate_of, rank, config.samples_per_shard)
    for name, values in columns.items():
        table = table.append_column(name, values)
    return Selection(table, facts, clip_column, config.samples_per_shard)


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


def _norm(model: str) -> str:
    return model.lower().replace("/", "-").replace("_", "-")


def ranking(table: pa.Table, clip_column: str) -> np.ndarray:
    """0 for the highest CLIP similarity, and so on; ties (and missing scores, last) by uid."""
    clip = rules.floats(table, clip_column).astype(np.float64)
    uids = np.array(table["uid"].to_pylist(), dtype=object).astype(str)
    order = np.lexsort((uids, np.nan_to_num(-clip, nan=np.inf)))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank


def remove_duplicates(
    table, scores, reason, rank, config: SelectConfig, semantic: Callable | None
) -> np.ndarray:
    """Mark duplicates among the rows ``reason`` keeps (in place); returns ``duplicate_of``
    (row number of the better sample, -1 for none) for every row. ``semantic(rows, rank,
    dedup_config, scores) -> duplicate_of`` replaces the in-memory semantic dedup (the Spark
    job passes its own, per cluster)."""
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


def embeddings_of(rows: pa.Table, scores: str) -> np.ndarray:
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
        emb = embeddings_of(table.take(rows[where]), scores)
    found = dedup.phash_duplicates(
        [hashes[i] for i in where], rank[where], d.phash_max_distance, emb, d.phash_min_cosine
    )
    out[where] = np.where(found >= 0, where[np.maximum(found, 0)], -1)
    return out


def _semantic(rows: pa.Table, rank: np.ndarray, d, scores: str) -> np.ndarray:
    return dedup.semantic_duplicates(
        embeddings_of(rows, scores),
        rank,
        d.semantic_min_cosine,
        d.neighbors,
        d.index,
        d.flat_below,
        d.nprobe,
    )


def lay_out(table, reason, duplicate_of, rank, per_shard: int) -> pa.Table:
    """The selection's columns: reasons, duplicate uids, ranks, and for kept samples their
    final shard and key (in input order, ``per_shard`` to a shard; keys as img2dataset makes
    them)."""
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
