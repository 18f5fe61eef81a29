"""MetaCLIP balancing as the selection's last step (``select: balance: {metadata, t, seed}``),
where MetaCLIP itself balances: after the download, the NSFW cut and the dedup.

The same rule as the filter stage's ``metaclip_balance``
(:class:`~vlcurate.pipeline.filters.metaclip.MetaclipBalance`): among the samples every
earlier step kept, a caption matching no entry is dropped (``metaclip_no_entry``), the matches
are counted per entry over them, and each is kept with probability
``1 - prod(1 - t / max(count_e, t))``, drawn from a hash of (seed, uid)
(``metaclip_sampled_out``). The selection holds the whole pool in memory already, so the counts
are taken here, not in Spark.
"""

import numpy as np
import pyarrow as pa

from vlcurate.pipeline.filters.metaclip import MetaclipBalance, draws, keep_probability
from vlcurate.pipeline.filters.metaclip_stats import balance_facts, entry_counts_of
from vlcurate.schemas.select import METACLIP_NO_MATCH, METACLIP_SAMPLED_OUT


def balance_kept(table: pa.Table, reason: np.ndarray, rule: MetaclipBalance) -> dict:
    """Mark, in ``reason`` (in place), the samples still kept that balancing drops; returns
    the facts for stats.json (the t used, the entries matched; under ``balance``: the
    parameters and the per-entry count histogram before and after,
    :func:`~vlcurate.pipeline.filters.metaclip_stats.balance_facts`)."""
    rows = np.flatnonzero(reason == None)  # noqa: E711 (elementwise)
    matcher = rule.matcher()
    entries = matcher.match_arrow(table["caption"].take(pa.array(rows)))
    lengths = pa.compute.list_value_length(entries).to_numpy(zero_copy_only=False)
    reason[rows[lengths == 0]] = METACLIP_NO_MATCH
    flat = pa.compute.list_flatten(entries).to_numpy(zero_copy_only=False)
    counts = np.bincount(flat.astype(np.int64), minlength=matcher.size)
    t = rule.threshold(counts)
    keep = keep_probability(entries, counts, t)
    uids = table["uid"].take(pa.array(rows)).to_pylist()
    out = (draws(uids, rule.seed) >= keep) & (lengths > 0)
    reason[rows[out]] = METACLIP_SAMPLED_OUT
    after = entry_counts_of(entries, matcher.size, ~out & (lengths > 0))  # the kept rows' ids
    return {
        "balance_t": int(t),
        "balance_entries_matched": int(np.count_nonzero(counts)),
        "balance": balance_facts(rule, counts, after, t),
    }
