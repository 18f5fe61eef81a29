"""MetaCLIP balancing (Xu et al., 2023, "Demystifying CLIP Data"; facebookresearch/MetaCLIP).

    filters:
      - metaclip_balance: {metadata: builtin, t: 20000, seed: 0}

Every caption is matched against the metadata entries (:mod:`.metaclip_match`); a caption that
matches none is dropped here, in its place among the rules, as ``metaclip_no_entry`` (MetaCLIP
drops them). Then, over the whole pool, after the exact dedup, the matches are counted per
entry (``count_e``, a Spark aggregation: ``jobs/balance.py``) and each caption is kept with
probability ``1 - prod(1 - t / max(count_e, t))`` over the entries it matched: a caption with a
tail entry (``count_e <= t``) is always kept, head entries are sampled down to about ``t``
captions each. The draw is one uniform number per caption from a hash of (``seed``, ``uid``),
no global random state, so a rerun over the same pool keeps the same samples. Captions the
draw leaves out are dropped as ``metaclip_sampled_out``.

``t`` is the threshold (MetaCLIP: 20k for 400M pairs out of a 1.6B pool; 170k for 2.5B), or
``tail_fraction`` sets it from the counts as MetaCLIP's ``p_to_t`` does: the smallest ``t``
whose capped counts ``sum(min(count_e, t))`` are that share of ``sum(count_e)``.
"""

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vlcurate.pipeline.config import ConfigError
from vlcurate.pipeline.filters.base import Filter
from vlcurate.pipeline.filters.metaclip_match import Matcher, get_matcher
from vlcurate.pipeline.filters.metaclip_metadata import (
    BUILTIN,
    MetadataError,
    check_entries,
    load_metadata,
    metadata_exists,
)
from vlcurate.pipeline.verdict import Verdict
from vlcurate.schemas.filter import METACLIP_NO_MATCH, METACLIP_SAMPLED_OUT

DEFAULT_T = 20_000  # MetaCLIP's 400M set
DRAW_RULE = "metaclip_balance_draw"  # the corpus-wide draw's name in stats.json's rule_order
ENTRIES = "entries"  # a batch's column of entry ids per row, when matched before the draw


def p_to_t(counts: np.ndarray, tail_fraction: float) -> int:
    """The smallest integer ``t`` with ``sum(min(counts, t)) >= tail_fraction * sum(counts)``."""
    c = np.sort(np.asarray(counts, dtype=np.float64)[np.asarray(counts) > 0])
    if len(c) == 0:
        return 1
    total, n = c.sum(), len(c)
    target = tail_fraction * total
    below = np.concatenate([[0.0], np.cumsum(c)[:-1]])  # sum of the counts under c[i]
    kept_at = below + c * (n - np.arange(n))  # sum(min(counts, c[i]))
    i = int(np.searchsorted(kept_at, target - 1e-9 * total))
    i = min(i, n - 1)
    return max(1, math.ceil((target - below[i]) / (n - i) - 1e-9))


def keep_probability(entries: pa.ListArray, counts: np.ndarray, t: float) -> np.ndarray:
    """``1 - prod(1 - t / max(count_e, t))`` over each row's entries; 0 for a row with none."""
    n = len(entries)
    ids = pc.list_flatten(entries).to_numpy(zero_copy_only=False).astype(np.int64)
    rows = pc.list_parent_indices(entries).to_numpy(zero_copy_only=False)
    p = t / np.maximum(counts[ids].astype(np.float64), t)
    certain = np.bincount(rows, weights=p >= 1.0, minlength=n) > 0
    log_miss = np.bincount(rows, weights=np.log1p(-np.minimum(p, 1.0 - 1e-12)), minlength=n)
    return np.where(certain, 1.0, -np.expm1(log_miss))


def draws(uids, seed: int) -> np.ndarray:
    """One uniform number in [0, 1) per uid, from blake2b(seed, uid): the same on every rerun."""
    prefix = f"{seed}\x00".encode()
    out = np.empty(len(uids), dtype=np.float64)
    for i, uid in enumerate(uids):
        digest = hashlib.blake2b(prefix + str(uid).encode(), digest_size=8).digest()
        out[i] = int.from_bytes(digest, "big") / 2.0**64
    return out


@dataclass
class MetaclipBalance(Filter):
    """Drops captions matching no entry; the corpus-wide pass then balances the rest."""

    name = "metaclip_balance"
    once = True  # one corpus-wide draw: a second rule is refused when the recipe loads
    reasons = (METACLIP_NO_MATCH, METACLIP_SAMPLED_OUT)
    metadata: str = field(
        default=BUILTIN,
        metadata={"help": "a metadata.json (JSON list of entries) or builtin (WordNet+wordfreq)"},
    )
    t: int | None = field(
        default=None,
        metadata={"help": f"captions kept per head entry; default {DEFAULT_T:,}", "min": 1},
    )
    tail_fraction: float | None = field(
        default=None,
        metadata={
            "help": "instead of t: share of sum(count_e) kept (p_to_t)",
            "above": 0,
            "max": 1,
        },
    )
    seed: int = field(default=0, metadata={"help": "seed of the per-uid draw"})
    lowercase: bool = field(
        default=True, metadata={"help": "match lower-cased (MetaCLIP itself: false)"}
    )

    def __post_init__(self):
        super().__post_init__()
        if self.t is not None and self.tail_fraction is not None:
            raise ConfigError(f"{self.section}: give t or tail_fraction, not both")
        if self.t is None and self.tail_fraction is None:
            self.t = DEFAULT_T
        if not metadata_exists(self.metadata):
            raise ConfigError(f"{self.section}.metadata: no file {self.metadata!r} (or builtin)")
        if self.metadata != BUILTIN:  # a user's file is read (once) and checked at load
            try:
                check_entries(load_metadata(self.metadata), self.metadata)
            except MetadataError as e:
                raise ConfigError(f"{self.section}.metadata: {e}") from None

    def matcher(self) -> Matcher:
        return get_matcher(self.metadata, self.lowercase)

    def setup(self) -> None:
        self.matcher()

    def judge(self, table: pa.Table) -> Verdict:
        entries = self.matcher().match_arrow(table.column("caption"))
        none = pc.equal(pc.list_value_length(entries), 0).to_numpy(zero_copy_only=False)
        return Verdict(np.where(none, METACLIP_NO_MATCH, None).astype(object))

    def with_entries(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """``batch`` and an ``entries`` column: the entry ids of each kept row (``drop_reason``
        null), an empty list for the others."""
        kept = pc.is_null(batch.column("drop_reason"))
        captions = pc.if_else(kept, batch.column("caption"), pa.scalar(None, pa.string()))
        entries = self.matcher().match_arrow(captions)
        return pa.RecordBatch.from_arrays(
            [*batch.columns, entries], schema=batch.schema.append(pa.field(ENTRIES, entries.type))
        )

    def threshold(self, counts: np.ndarray) -> int:
        """``t``, or the one ``tail_fraction`` gives over these counts."""
        return self.t if self.tail_fraction is None else p_to_t(counts, self.tail_fraction)

    def draw_batch(self, batch: pa.RecordBatch, counts: np.ndarray, t: float) -> pa.RecordBatch:
        """``batch`` (annotated rows) with ``metaclip_sampled_out`` on the kept rows that lose
        the draw; the other rows are unchanged. A batch with an ``entries`` column (the entry
        ids of each row, :meth:`with_entries`) is not matched again."""
        reasons = batch.column("drop_reason").to_numpy(zero_copy_only=False).copy()
        alive = np.flatnonzero(reasons == None)  # noqa: E711 (elementwise)
        if len(alive):
            rows = pa.array(alive)
            if ENTRIES in batch.schema.names:  # matched before (jobs/balance.py): not again
                entries = pc.take(batch.column(ENTRIES), rows)
            else:
                entries = self.matcher().match_arrow(pc.take(batch.column("caption"), rows))
            keep = keep_probability(entries, counts, t)
            uids = pc.take(batch.column("uid"), rows).to_pylist()
            reasons[alive[draws(uids, self.seed) >= keep]] = METACLIP_SAMPLED_OUT
        index = batch.schema.get_field_index("drop_reason")
        return batch.set_column(index, "drop_reason", pa.array(reasons, pa.string()))


def find_balance(filters: list[Filter]) -> MetaclipBalance | None:
    """The recipe's ``metaclip_balance`` rule (at most one), or None."""
    found = [f for f in filters if isinstance(f, MetaclipBalance)]
    if len(found) > 1:
        raise ConfigError("filters: metaclip_balance appears more than once")
    return found[0] if found else None
