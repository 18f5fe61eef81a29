"""MetaCLIP balancing over the whole pool, in Spark: the filter stage's last corpus-wide step.

Each caption the rules and the dedup kept is matched against the metadata on the executors
(one automaton per Python worker), its entry ids exploded and counted per entry
(``groupBy(entry).count()``): only the per-entry counts (one integer per entry) come back to
the driver, never the captions. The counts are broadcast and each kept row gets its draw
(:meth:`~vlcurate.pipeline.filters.metaclip.MetaclipBalance.draw_batch`).
"""

import numpy as np

from vlcurate.pipeline.filters.metaclip import MetaclipBalance


def entry_counts(rows, rule: MetaclipBalance) -> np.ndarray:
    """Matches per entry id over the rows of ``rows`` (a DataFrame with ``caption`` and
    ``drop_reason``) whose ``drop_reason`` is null: an int64 array of the metadata's size."""
    from pyspark.sql import functions as F

    def match(batches):
        import pyarrow as pa

        matcher = rule.matcher()
        for batch in batches:
            entries = matcher.match_arrow(batch.column("caption"))
            yield pa.RecordBatch.from_arrays([entries], ["entries"])

    kept = rows.filter(F.col("drop_reason").isNull()).select("caption")
    ids = kept.mapInArrow(match, "entries array<int>")
    per_entry = ids.select(F.explode("entries").alias("entry")).groupBy("entry").count()
    table = per_entry.toArrow()  # one row per matched entry, as Arrow: no Row objects
    counts = np.zeros(rule.matcher().size, dtype=np.int64)
    counts[table.column("entry").to_numpy()] = table.column("count").to_numpy()
    return counts


def balance(spark, rows, rule: MetaclipBalance):
    """``rows`` (annotated, deduplicated) with ``metaclip_sampled_out`` on the kept rows the
    draw leaves out; returns (the DataFrame, the t used). Runs the counting job at once."""
    counts = entry_counts(rows, rule)
    t = rule.threshold(counts)
    shared = spark.sparkContext.broadcast(counts)

    def draw(batches):
        for batch in batches:
            yield rule.draw_batch(batch, shared.value, t)

    return rows.mapInArrow(draw, rows.schema), t
