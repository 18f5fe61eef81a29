"""Exact deduplication, the filter stage's last rule: over the rows every caption rule kept,
later copies of a uid (md5 of caption + url) are ``duplicate_uid``, then rows beyond
``max_per_url`` per image URL are ``duplicate_url``. "Later" is input order (warc_path,
warc_offset, position, uid), so the result does not depend on how the rows were split.

It is a relational step over the whole corpus, so Spark's shuffle does it (:func:`mark_duplicates`
receives a DataFrame; pyspark is imported only inside it)."""

from dataclasses import dataclass, field
from typing import ClassVar

from vlcurate.pipeline.config import Config
from vlcurate.schemas.filter import DUPLICATE_UID, DUPLICATE_URL

INPUT_ORDER = ("warc_path", "warc_offset", "position", "uid")
RULES = ("dedup_uid", "dedup_url")  # their names in stats.json's rule_order


@dataclass
class Dedup(Config):
    """A recipe's ``dedup:`` section."""

    section: ClassVar[str] = "dedup"
    uid: bool = field(
        default=True, metadata={"help": "drop later rows with the same md5(caption + url)"}
    )
    max_per_url: int | None = field(
        default=1,
        metadata={
            "help": "keep at most this many captions per image URL; null: no limit",
            "min": 1,
        },
    )


def mark_duplicates(rows, dedup: Dedup):
    """``rows``: a DataFrame of annotated pairs (``drop_reason`` null where every rule kept the
    row); returns it with the later copies among the kept rows marked."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = [F.col(c).asc_nulls_last() for c in INPUT_ORDER]
    keys = [("uid", 1 if dedup.uid else None, DUPLICATE_UID)]
    keys.append(("url", dedup.max_per_url, DUPLICATE_URL))
    for column, limit, reason in keys:
        if limit is None:
            continue
        kept = F.col("drop_reason").isNull()
        rank = F.row_number().over(Window.partitionBy(column, kept).orderBy(*order))
        rows = rows.withColumn(
            "drop_reason",
            F.when(kept & (rank > limit), F.lit(reason)).otherwise(F.col("drop_reason")),
        )
    return rows
