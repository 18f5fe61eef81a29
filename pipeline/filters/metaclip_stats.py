"""What MetaCLIP balancing records in ``stats.json`` (the filter stage's ``metaclip_balance``
field, select's ``balance``): the parameters actually used and the per-entry count histogram
before and after the draw.

The histogram's bins are log-spaced in ``count_e`` (matches of entry ``e`` over the pool):
``1``, ``2-10``, ``11-100``, ``101-1000``, ... up to the bin of the largest count. Each bin
holds, before balancing and after it (each binned by its own counts), the number of entries
whose count falls in the bin and the sum of their counts (the matches). Balancing empties the
bins above ``t``'s and leaves those under it as they were: the head is sampled down to about
``t`` captions an entry, the tail kept whole. ``entries_kept`` and ``matches_kept`` follow the
entries of each bin before (binned by their count before): how many of them still match a kept
caption, and their matches after; never more than the bin's before.
"""

import numpy as np

from vlcurate.pipeline.filters.metaclip_metadata import BUILTIN


def bin_uppers(largest: int) -> list[int]:
    """The upper bounds of the bins up to ``largest``: 1, 10, 100, ..."""
    uppers = [1]
    while uppers[-1] < largest:
        uppers.append(uppers[-1] * 10)
    return uppers


def bin_label(low: int, high: int) -> str:
    return f"{low:,}" if low == high else f"{low:,}-{high:,}"


def _binned(counts: np.ndarray, uppers: list[int], by=None) -> tuple[np.ndarray, np.ndarray]:
    """(entries, matches) per bin, over the entries with a count >= 1; each entry binned by
    its count in ``by`` (``counts`` itself by default)."""
    c = np.asarray(counts, dtype=np.int64)
    by = c if by is None else np.asarray(by, dtype=np.int64)
    c, by = c[(c > 0) & (by > 0)], by[(c > 0) & (by > 0)]
    where = np.searchsorted(np.asarray(uppers, dtype=np.int64), by, side="left")
    entries = np.bincount(where, minlength=len(uppers))
    matches = np.bincount(where, weights=c, minlength=len(uppers))
    return entries, matches


def histogram(before: np.ndarray, after: np.ndarray) -> list[dict]:
    """One row per log-spaced bin of ``count_e``: the entries and the matches in it, before
    and after balancing."""
    largest = int(max(np.max(before, initial=0), np.max(after, initial=0)))
    uppers = bin_uppers(max(largest, 1))
    entries_before, matches_before = _binned(before, uppers)
    entries_after, matches_after = _binned(after, uppers)
    entries_kept, matches_kept = _binned(after, uppers, by=before)
    rows = []
    for i, high in enumerate(uppers):
        low = 1 if i == 0 else uppers[i - 1] + 1
        rows.append(
            {
                "bin": bin_label(low, high),
                "low": low,
                "high": high,
                "entries_before": int(entries_before[i]),
                "matches_before": int(matches_before[i]),
                "entries_after": int(entries_after[i]),
                "matches_after": int(matches_after[i]),
                "entries_kept": int(entries_kept[i]),
                "matches_kept": int(matches_kept[i]),
            }
        )
    return rows


def balance_facts(rule, before: np.ndarray, after: np.ndarray, t: int) -> dict:
    """The facts of one balancing: ``rule`` (a ``MetaclipBalance``), the per-entry counts
    over the rows it saw (``before``) and over the rows it kept (``after``), the ``t`` used."""
    return {
        "t": int(t),
        "t_from": "t" if rule.tail_fraction is None else "tail_fraction",
        "tail_fraction": rule.tail_fraction,
        "metadata": rule.metadata,
        "metadata_source": "builtin" if rule.metadata == BUILTIN else "file",
        "metadata_entries": int(rule.matcher().size),
        "lowercase": rule.lowercase,
        "seed": rule.seed,
        "entries_matched": int(np.count_nonzero(before)),
        "entries_matched_after": int(np.count_nonzero(after)),
        "matches_before": int(np.sum(before)),
        "matches_after": int(np.sum(after)),
        "histogram": histogram(before, after),
    }


def entry_counts_of(entries, size: int, keep: np.ndarray | None = None) -> np.ndarray:
    """Matches per entry id over ``entries`` (a list array of entry ids per row), over the
    rows where ``keep`` is true (every row by default)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if keep is not None:
        entries = entries.filter(pa.array(np.asarray(keep, dtype=bool)))
    flat = pc.list_flatten(entries).to_numpy(zero_copy_only=False).astype(np.int64)
    return np.bincount(flat, minlength=size)
