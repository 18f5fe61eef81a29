"""MetaCLIP balancing over the whole pool, in Spark: the filter stage's last corpus-wide step.

Each caption the rules and the dedup kept is matched against the metadata once, on the
executors (one n-gram table per Python worker), its entry ids kept beside the row (a persisted
``entries`` column), exploded and counted per entry (``groupBy(entry).count()``): only the
per-entry counts (one integer per entry) come back to the driver, never the captions. The
counts are broadcast and each kept row gets its draw
(:meth:`~vlcurate.pipeline.filters.metaclip.MetaclipBalance.draw_batch`, from the kept entry
ids); the counts after the draw are the same aggregation over the rows it kept, for
``stats.json`` (:mod:`vlcurate.pipeline.filters.metaclip_stats`).
"""

import numpy as np

from vlcurate.pipeline.filters.metaclip import ENTRIES, MetaclipBalance
from vlcurate.pipeline.filters.metaclip_stats import balance_facts


def with_entries(rows, rule: MetaclipBalance):
    """``rows`` (a DataFrame with ``caption`` and ``drop_reason``) and an ``entries`` column:
    the entry ids of each row ``drop_reason`` keeps (an empty list for the others)."""
    from pyspark.sql.types import ArrayType, IntegerType, StructField, StructType

    def match(batches):
        for batch in batches:
            yield rule.with_entries(batch)

    schema = StructType([*rows.schema.fields, StructField(ENTRIES, ArrayType(IntegerType()))])
    return rows.mapInArrow(match, schema)


def count_entries(matched, size: int):
    """Matches per entry id over the rows of ``matched`` (:func:`with_entries`) whose
    ``drop_reason`` is null: an int64 array of ``size``."""
    from pyspark.sql import functions as F

    kept = matched.filter(F.col("drop_reason").isNull())
    per_entry = kept.select(F.explode(ENTRIES).alias("entry")).groupBy("entry").count()
    table = per_entry.toArrow()  # one row per matched entry, as Arrow: no Row objects
    counts = np.zeros(size, dtype=np.int64)
    counts[table.column("entry").to_numpy()] = table.column("count").to_numpy()
    return counts


def entry_counts(rows, rule: MetaclipBalance) -> np.ndarray:
    """Matches per entry id over the rows of ``rows`` whose ``drop_reason`` is null."""
    matched = with_entries(rows.select("caption", "drop_reason"), rule)
    return count_entries(matched, rule.matcher().size)


def balance(spark, rows, rule: MetaclipBalance, persisted: list | None = None):
    """``rows`` (annotated, deduplicated) with ``metaclip_sampled_out`` on the kept rows the
    draw leaves out; returns (the DataFrame, its facts for stats.json: the t used, the
    per-entry histogram before and after). Runs the counting jobs at once; the frames it
    persists are appended to ``persisted`` (the caller unpersists them)."""
    from pyspark import StorageLevel

    persisted = [] if persisted is None else persisted
    size = rule.matcher().size
    matched = with_entries(rows, rule).persist(StorageLevel.MEMORY_AND_DISK)
    persisted.append(matched)
    before = count_entries(matched, size)
    t = rule.threshold(before)
    shared = spark.sparkContext.broadcast(before)

    def draw(batches):
        for batch in batches:
            yield rule.draw_batch(batch, shared.value, t)

    drawn = matched.mapInArrow(draw, matched.schema).persist(StorageLevel.MEMORY_AND_DISK)
    persisted.append(drawn)
    after = count_entries(drawn, size)
    return drawn.drop(ENTRIES), balance_facts(rule, before, after, t)
