"""Repair: asking again for the URLs whose last failure was transient (img2dataset #333, #452).

A finished download's sidecars hold every URL's outcome. A repair round collects the URLs whose
latest outcome is a failure that may pass (a timeout, a refused or reset connection, DNS, 429,
5xx), never one that will not (404, too large, robots.txt, a block list, a bad image), and
writes them, with the key of their first row (``repair_of``), to ``_repair/round-NNN.parquet``.
The round's URLs become new shards after the last one (their numbers are in the round file), so
the old shards stay as they are and a URL's image is in at most one tar: the first attempt failed,
or it would not be repaired. Every attempt keeps its sidecar row; a URL's latest row is its outcome.

The stage's stats add up: each repaired URL's earlier failure is taken out of the tally when its
new outcome comes in, so ``in`` stays the number of candidates. A killed repair resumes like any
download (the round's finished shards are done); a new round is planned only once every shard,
earlier rounds' too, is done, and a repair with nothing transient left writes nothing.
"""

import json
import re
from collections import Counter
from dataclasses import dataclass

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from vlcurate.pipeline import storage
from vlcurate.pipeline.download import fetch
from vlcurate.pipeline.download.politeness import HOST_BUSY, RATE_LIMITED, SERVER_UNAVAILABLE
from vlcurate.pipeline.download.resolver import DNS_ERROR
from vlcurate.pipeline.download.shards import download_reason
from vlcurate.pipeline.download.worker import SIDECAR_FIELDS

REPAIR = "_repair"
REPAIR_OF = "repair_of"  # the key of the URL's row in its first shard
REPAIRED_REASON = "repaired_reason"  # the failure the round asks again after
TRANSIENT = frozenset(
    {
        fetch.TIMEOUT,
        fetch.CONNECTION_REFUSED,
        fetch.CONNECTION_RESET,
        fetch.CONNECTION_ERROR,
        fetch.INCOMPLETE_BODY,
        DNS_ERROR,
        RATE_LIMITED,
        SERVER_UNAVAILABLE,
        HOST_BUSY,
        "http_408",
        "http_429",
    }
)
SERVER_ERROR = re.compile(r"http_5\d\d")


def transient(reason: str | None) -> bool:
    return reason is not None and (reason in TRANSIENT or bool(SERVER_ERROR.fullmatch(reason)))


@dataclass(frozen=True)
class Round:
    path: str
    first_shard: int
    rows: int


def rounds(output: str) -> list[Round]:
    """The repair rounds planned in ``output``, in order."""
    fs, folder = fsspec.core.url_to_fs(storage.join(output, REPAIR))
    found = []
    for path in sorted(fs.glob(f"{folder}/round-*.parquet")):
        with fs.open(path, "rb") as f:
            meta = pq.read_metadata(f)
        first = int(json.loads(meta.schema.to_arrow_schema().metadata[b"vlcurate"])["first_shard"])
        found.append(Round(fs.unstrip_protocol(path), first, meta.num_rows))
    return found


def latest_outcomes(output: str, shards: list[str]) -> pa.Table:
    """The latest sidecar row of every URL over ``shards`` in order (later attempts win), with
    ``_origin``: the key of the URL's first row."""
    tables = []
    for shard in shards:
        with fsspec.open(storage.join(output, f"{shard}.parquet"), "rb") as f:
            table = pq.read_table(f)
        keys = table.column("key").to_pylist()
        first = _column(table, REPAIR_OF)
        origin = [f or k for f, k in zip(first, keys, strict=True)]
        tables.append(table.append_column("_origin", pa.array(origin, pa.string())))
    if not tables:
        return pa.table({})
    table = pa.concat_tables(tables, promote_options="default")
    last = {origin: i for i, origin in enumerate(table.column("_origin").to_pylist())}
    return table.take(pa.array(sorted(last.values()), pa.int64()))


def plan_round(output: str, shards: list[str], samples_per_shard: int) -> Round | None:
    """Write the next round's URL list, or return None when nothing is left to ask again."""
    latest = latest_outcomes(output, shards)
    if latest.num_rows == 0:
        return None
    statuses = latest.column("status").to_pylist()
    errors = latest.column("error_message").to_pylist()
    reasons = [download_reason(s, e) for s, e in zip(statuses, errors, strict=True)]
    again = [s != "success" and transient(r) for s, r in zip(statuses, reasons, strict=True)]
    if not any(again):
        return None
    table = latest.append_column("_reason", pa.array(reasons, pa.string()))
    table = table.filter(pa.array(again, pa.bool_()))
    own = {name for name, _ in SIDECAR_FIELDS} | {REPAIR_OF, REPAIRED_REASON}
    table = table.select([n for n in table.schema.names if n not in own])
    table = table.rename_columns(
        [{"_origin": REPAIR_OF, "_reason": REPAIRED_REASON}.get(n, n) for n in table.schema.names]
    )
    done = rounds(output)
    index = len(done) + 1
    first = max([len(shards)] + [r.first_shard + _shards(r.rows, samples_per_shard) for r in done])
    meta = {b"vlcurate": json.dumps({"first_shard": first, "round": index}).encode()}
    table = table.replace_schema_metadata(meta)
    path = storage.join(output, REPAIR, f"round-{index:03d}.parquet")
    with storage.parquet_writer(path, table.schema) as writer:
        writer.write_table(table)
    return Round(path, first, table.num_rows)


def superseded(round_: Round) -> Counter:
    """The failures a round's URLs had before it: taken out of the tally as it is counted."""
    with fsspec.open(round_.path, "rb") as f:
        return Counter(pq.read_table(f, columns=[REPAIRED_REASON]).column(0).to_pylist())


def _shards(rows: int, per_shard: int) -> int:
    return -(-rows // per_shard)


def _column(table: pa.Table, name: str) -> list:
    return table.column(name).to_pylist() if name in table.schema.names else [None] * len(table)
