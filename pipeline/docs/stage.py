"""The docs filter stage, one input file at a time: :func:`filter_file` reads one parquet file
of the extract stage's ``docs/``, applies a recipe's ``docs:`` rules
(:mod:`vlcurate.pipeline.docs.filters`) with the corpus-wide set of too-frequent image URLs, and
writes the kept documents (same schema, failing nodes removed) and the file's stats, each written
whole under a temporary name and then renamed, the stats last: a file with stats is done.
"""

import json
from collections import Counter
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from vlcurate.pipeline import storage
from vlcurate.pipeline.docs.filters import DocFilterConfig, filter_documents
from vlcurate.pipeline.stats import StageStats
from vlcurate.schemas.extract import DOC_SCHEMA

STAGE = "docs_filter"


def image_url_counts(docs: Iterable[dict]) -> Counter:
    """How often each image URL appears (every occurrence counts). The Spark job does the same
    with a groupBy; this is for one machine and the tests."""
    return Counter(
        node["url"]
        for doc in docs
        for node in doc.get("nodes") or ()
        if node and node.get("type") == "image" and node.get("url")
    )


def output_paths(output: str, name: str) -> tuple[str, str]:
    """(documents, stats) of input file ``name`` under ``output``."""
    return storage.join(output, "docs", f"{name}.parquet"), storage.join(
        output, "_stats", f"{name}.json"
    )


def file_name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1].removesuffix(".parquet")


def filter_file(
    path: str, output: str, config: DocFilterConfig, banned_urls: frozenset[str] = frozenset()
) -> dict:
    """Filter one docs parquet file into ``output``; returns its stats (or the stats written by
    an earlier run that finished this file)."""
    docs_path, stats_path = output_paths(output, file_name(path))
    if storage.exists(stats_path):
        return json.loads(storage.read_text(stats_path))
    rows = pq.read_table(path).to_pylist()
    kept, stats = filter_documents(rows, config, banned_urls, StageStats(STAGE))
    with storage.atomic_open(docs_path, "wb") as f:
        pq.write_table(pa.Table.from_pylist(kept, schema=DOC_SCHEMA), f)
    storage.write_text_atomic(stats_path, json.dumps(stats) + "\n")
    return stats


def merge_stats(parts: list[dict], **fields) -> dict:
    """One stats dict for the stage from the files' (identities checked)."""
    total = StageStats(STAGE)
    for part in parts:
        total.merge(StageStats.from_dict(part))
    total.check()
    return total.to_dict(**fields)
