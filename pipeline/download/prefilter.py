"""Everything decided about a URL before any request: the SSRF checks, the opt-out lists and the
URL block list, each drop counted by reason; then the order in which the rest are fetched."""

import hashlib
import zlib
from collections import Counter
from dataclasses import dataclass

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vlcurate.pipeline import storage
from vlcurate.pipeline.download.lists import BLOCKLISTED, OPTED_OUT, Blocklist, OptOut
from vlcurate.pipeline.download.safety import UrlSafety
from vlcurate.pipeline.download.shards import STAGE
from vlcurate.pipeline.stats import StageStats

DIGEST = b"vlcurate_urls_digest"  # the URL list's metadata: what it was cut from
INPUT = "_input"  # the URL list the shards are cut from, and the refused URLs, for inspection
# img2dataset's sidecar owns these names; ours are renamed on the way in.
RENAMED = {"width": "declared_width", "height": "declared_height"}
RESERVED = {
    "key",
    "caption",
    "url",
    "width",
    "height",
    "original_width",
    "original_height",
    "status",
    "error_message",
    "exif",
    "md5",
    "sha256",
    "sha512",
}


@dataclass
class UrlList:
    """The pre-filter's result: the URLs to fetch (in fetch order), the refused ones with their
    ``drop_reason`` (a URL on the block list is counted, not kept), the pre-filter's stats and
    the columns carried into the shards."""

    safe: pa.Table
    unsafe: pa.Table
    stats: StageStats
    carry: list[str]

    def digest(self) -> str:
        """What the shards are cut from: the URLs, in order."""
        urls = "\n".join(self.safe.column("url").to_pylist())
        return hashlib.sha256(urls.encode()).hexdigest()[:16]


def reasons(urls: list, safety: UrlSafety, opt_out: OptOut, blocklist: Blocklist):
    """Each URL's drop reason (None for a URL that may be requested), and its host."""
    found, hosts = [], []
    for url in urls:
        checked = safety.check(url)
        reason = checked.reason
        if reason is None and opt_out and opt_out.opted_out(url):
            reason = OPTED_OUT
        if reason is None and blocklist and blocklist.url_blocked(url):
            reason = BLOCKLISTED
        found.append(reason)
        hosts.append(checked.host)
    return found, hosts


def fetch_order(hosts: list[str]) -> list[int]:
    """Row indices with hosts interleaved: every host's first URL, then every host's second...
    (hosts in a fixed pseudo-random order, input order within a host). Deterministic."""
    rank: Counter = Counter()
    keys = []
    for row, host in enumerate(hosts):
        keys.append((rank[host], zlib.crc32(host.encode()), row))
        rank[host] += 1
    return [row for _, _, row in sorted(keys)]


def prefilter(
    candidates: pa.Table, safety: UrlSafety, opt_out: OptOut, blocklist: Blocklist
) -> UrlList:
    stats = StageStats(STAGE)
    urls = candidates.column("url").to_pylist()
    found, hosts = reasons(urls, safety, opt_out, blocklist)
    for reason, n in Counter(r for r in found if r is not None).items():
        stats.main.drop(reason, n)
    refused = pa.array([r is not None for r in found], pa.bool_())
    stats.extra["unsafe_urls"] = int(pc.sum(refused).as_py() or 0)
    safe = candidates.filter(pc.invert(refused))
    hosts = [host for host, reason in zip(hosts, found, strict=True) if reason is None]
    safe = safe.take(pa.array(fetch_order(hosts), pa.int64()))
    safe = safe.rename_columns([RENAMED.get(n, n) for n in safe.schema.names])
    kept_out = [r not in (None, BLOCKLISTED) for r in found]  # a listed URL is not written
    unsafe = candidates.filter(pa.array(kept_out, pa.bool_())).append_column(
        "drop_reason", pa.array([r for r in found if r not in (None, BLOCKLISTED)], pa.string())
    )
    carry = [n for n in safe.schema.names if n not in RESERVED]
    return UrlList(safe, unsafe, stats, carry)


def url_list_path(output: str) -> str:
    return storage.join(output, INPUT, "urls.parquet")


def write_url_list(urls: UrlList, output: str) -> None:
    """Write the URL list the shards are cut from, and the refused rows for inspection; a list
    already there from the same URLs is kept (it may have been scrubbed, see :func:`scrub`)."""
    path = url_list_path(output)
    digest = urls.digest().encode()
    if storage.exists(path):
        with fsspec.open(path, "rb") as f:
            meta = pq.read_schema(f).metadata or {}
        if meta.get(DIGEST) == digest:
            return
    safe = urls.safe.replace_schema_metadata({**(urls.safe.schema.metadata or {}), DIGEST: digest})
    unsafe_path = storage.join(output, INPUT, "unsafe.parquet")
    for table, where in ((safe, path), (urls.unsafe, unsafe_path)):
        with storage.parquet_writer(where, table.schema) as writer:
            writer.write_table(table)


def scrub(path: str, rows: list[int]) -> None:
    """Blank the caption and every URL column of ``rows`` in the URL list at ``path``: images the
    block list matched by their bytes, whose URL must stay nowhere in the output."""
    with fsspec.open(path, "rb") as f:
        table = pq.read_table(f)
    wanted = set(rows)
    listed = pa.array([i in wanted for i in range(table.num_rows)], pa.bool_())
    for index, name in enumerate(table.schema.names):
        if name == "caption" or name.endswith("url"):
            column = pc.if_else(listed, pa.scalar(None, table.schema.field(name).type), table[name])
            table = table.set_column(index, name, column)
    with storage.parquet_writer(path, table.schema) as writer:
        writer.write_table(table)
