"""Downloading one shard: threads fetch, this thread checks, resizes and writes.

The threads take tasks from the shard's :class:`~vlcurate.pipeline.download.hosts.HostQueue`
(robots.txt first, then URLs as each host's politeness allows) and get each URL with the
:class:`~vlcurate.pipeline.download.client.Client`; a 429 or 503 goes back in the queue after
Retry-After (capped) or a jittered backoff, at most ``retries`` times, and holds the whole host
off meanwhile. This thread takes their results in completion order, as img2dataset does, and
for each: the content block list, in memory (a listed image is counted, never written, and its
row in the sidecar loses its URL and caption); img2dataset's ``Resizer`` (decode, resize,
encode); img2dataset's ``WebDatasetSampleWriter`` (``key.jpg/.txt/.json`` in the tar, one row per
URL in the parquet sidecar, keys as img2dataset makes them). The results waiting for this
thread are bounded (twice the threads), so memory is at most that many bodies of at most
``max_image_bytes`` each, whatever the servers send.

The tar and sidecar are written in ``_partial/`` and moved into the output when whole; the
shard's ``_stats.json`` (img2dataset's format) is written last, then the stage's done marker.
"""

import hashlib
import io
import json
import math
import queue
import random
import sys
import threading
import time
from collections import Counter, deque

import pyarrow as pa

from vlcurate.pipeline import storage
from vlcurate.pipeline.download.hosts import DropTask, FetchTask, HostQueue, Item, RobotsTask
from vlcurate.pipeline.download.lists import BLOCKLISTED
from vlcurate.pipeline.download.politeness import RETRY_STATUSES, backoff_seconds
from vlcurate.pipeline.download.robots import ROBOTS_DISALLOWED, origin
from vlcurate.pipeline.download.shards import SHARD_DIGITS, shard_name
from vlcurate.pipeline.stats import StageStats

PARTIAL = "_partial"
WINDOW = 1000  # the success rate is watched over the last this many URLs
WARN_BELOW = 0.5
WORST_HOSTS = 20
SIDECAR_FIELDS = [
    ("key", pa.string()),
    ("status", pa.string()),
    ("error_message", pa.string()),
    ("width", pa.int32()),
    ("height", pa.int32()),
    ("original_width", pa.int32()),
    ("original_height", pa.int32()),
    ("exif", pa.string()),
    ("sha256", pa.string()),
]


def sidecar_schema(rows: pa.Schema) -> pa.Schema:
    """img2dataset's sidecar schema: the URL list's columns, then its own."""
    schema = rows
    for name, kind in SIDECAR_FIELDS:
        schema = schema.append(pa.field(name, kind))
    return schema


class Watch:
    """The success rate of the last :data:`WINDOW` URLs, and a warning when it falls under
    :data:`WARN_BELOW` (img2dataset #223), at most once a window."""

    def __init__(self, shard: str):
        self.shard = shard
        self.recent: deque = deque(maxlen=WINDOW)
        self.reasons: Counter = Counter()
        self.since_warning = WINDOW

    def add(self, ok: bool, reason: str | None) -> None:
        self.recent.append(ok)
        self.since_warning += 1
        if reason:
            self.reasons[reason] += 1
        if len(self.recent) == WINDOW and self.since_warning >= WINDOW:
            rate = sum(self.recent) / WINDOW
            if rate < WARN_BELOW:
                common = ", ".join(f"{r} {n}" for r, n in self.reasons.most_common(3))
                print(
                    f"warning: download shard {self.shard}: {rate:.0%} of the last {WINDOW} "
                    f"URLs succeeded (most common failures: {common})",
                    file=sys.stderr,
                )
                self.since_warning = 0


def download_shard(shard_id: int, rows: pa.Table, output: str, context) -> StageStats:
    """Download ``rows`` (``url``, ``caption``, carried columns) as shard ``shard_id`` of
    ``output``; ``context`` is the process's :class:`~vlcurate.pipeline.download.context.
    Fetching` (client, gate, robots, lists, resizer)."""
    from img2dataset.writer import WebDatasetSampleWriter

    name = shard_name(shard_id)
    partial = storage.join(output, PARTIAL)
    storage.makedirs(partial)
    writer = WebDatasetSampleWriter(
        shard_id, partial, True, SHARD_DIGITS, sidecar_schema(rows.schema), "jpg"
    )
    start = time.time()
    asked = (context.robots.fetches, context.client.resolver.lookups)
    columns = rows.to_pydict()
    results = _fetch_all(columns["url"], context)
    shard = _Shard(shard_id, len(columns["url"]), writer, context)
    for row, body, reason, host in results:
        meta = {key: values[row] for key, values in columns.items()}
        shard.add(row, meta, body, reason, host)
    writer.close()
    shard.stats.extra["robots_fetches"] += context.robots.fetches - asked[0]
    shard.stats.extra["dns_lookups"] += context.client.resolver.lookups - asked[1]
    for suffix in (".tar", ".parquet"):
        storage.move(storage.join(partial, name + suffix), storage.join(output, name + suffix))
    storage.write_text_atomic(
        storage.join(output, f"{name}_stats.json"), json.dumps(shard.img2dataset_stats(start))
    )
    return shard.stats


def _fetch_all(urls: list[str], context):
    """Yield ``(row, body, reason, host)`` for every URL, in completion order."""
    items = [Item(row, url, origin(url), context.host_of(url)) for row, url in enumerate(urls)]
    hosts = HostQueue(items, context.gate, context.delay, context.fixed_rules)
    done: queue.Queue = queue.Queue(maxsize=2 * context.threads)
    threads = [
        threading.Thread(target=_work, args=(hosts, done, context), daemon=True)
        for _ in range(min(context.threads, max(1, len(items))))
    ]
    for thread in threads:
        thread.start()
    for _ in range(len(items)):
        result = done.get()
        if isinstance(result, BaseException):
            raise result
        yield result
    for thread in threads:
        thread.join()


def _work(hosts: HostQueue, done: queue.Queue, context) -> None:
    rng = random.Random()
    try:
        while (task := hosts.take()) is not None:
            if isinstance(task, RobotsTask):
                hosts.set_rules(task.origin, context.robots.rules(task.url))
            elif isinstance(task, DropTask):
                reason = task.reason
                if reason == ROBOTS_DISALLOWED:  # or why its robots.txt got no answer at all
                    reason = context.disallowed_reason(task.item.url)
                done.put((task.item.row, None, reason, task.item.host))
                hosts.done()
            else:
                _get(task, hosts, done, context, rng)
    except BaseException as e:  # noqa: BLE001 - handed to the shard's thread, which raises it
        done.put(e)


def _get(task: FetchTask, hosts: HostQueue, done: queue.Queue, context, rng) -> None:
    item = task.item
    outcome = context.client.get(item.url, context.config.max_image_bytes, task.lease)
    if outcome.status in RETRY_STATUSES and outcome.body is None:
        if item.attempt < context.config.retries:
            wait = backoff_seconds(
                item.attempt, outcome.retry_after, context.config.retry_after_cap, rng
            )
            until = time.monotonic() + wait
            context.gate.hold_off(outcome.host, until)
            hosts.retry(item, until)
            return
        outcome.reason = RETRY_STATUSES[outcome.status]
    done.put((item.row, outcome.body, outcome.reason, outcome.host))
    hosts.done()


class _Shard:
    """The shard's rows as they come: checked, resized, written, counted."""

    def __init__(self, shard_id: int, count: int, writer, context):
        self.shard_id = shard_id
        self.count = count
        self.writer = writer
        self.context = context
        self.sample_digits = math.ceil(math.log10(max(2, context.config.samples_per_shard)))
        self.stats = StageStats("download")
        self.status = Counter()
        self.statuses = Counter()
        self.failed_hosts = Counter()
        self.watch = Watch(shard_name(shard_id))

    def key(self, row: int) -> str:
        width = self.sample_digits + SHARD_DIGITS
        return f"{self.shard_id * 10**self.sample_digits + row:0{width}d}"

    def add(self, row: int, meta: dict, body: bytes | None, reason: str | None, host: str):
        meta.update(dict.fromkeys(name for name, _ in SIDECAR_FIELDS))
        meta["key"] = self.key(row)
        image = None
        if body is not None and self.context.blocklist.content_blocked(body):
            for name in [n for n in meta if n == "caption" or n.endswith("url")]:
                meta[name] = None  # the URL of a listed image (and its page) goes nowhere
            reason, body = BLOCKLISTED, None
        if body is not None:
            image, reason = self._resized(body, meta)
        status = (
            "success"
            if image is not None
            else ("failed_to_resize" if body is not None else "failed_to_download")
        )
        meta["status"], meta["error_message"] = status, reason
        self.writer.write(image, meta["key"], meta["caption"], meta)
        self._count(status, reason, host if reason != BLOCKLISTED else None)

    def _resized(self, body: bytes, meta: dict):
        image, width, height, original_width, original_height, error = self.context.resizer(
            io.BytesIO(body)
        )
        if error is not None:
            return None, error
        meta.update(
            width=width,
            height=height,
            original_width=original_width,
            original_height=original_height,
            exif=self.context.exif(body),
            sha256=hashlib.sha256(body).hexdigest(),
        )
        return image, None

    def _count(self, status: str, reason: str | None, host: str | None) -> None:
        from vlcurate.pipeline.download.shards import download_reason

        self.statuses[status] += 1
        if status == "success":
            self.stats.main.keep()
            self.status["success"] += 1
        else:
            self.stats.main.drop(download_reason(status, reason))
            self.status[reason] += 1
            if host:
                self.failed_hosts[host] += 1
        self.watch.add(status == "success", reason)

    def img2dataset_stats(self, start: float) -> dict:
        end = time.time()
        self.stats.extra["shards"] += 1
        for host, n in self.failed_hosts.most_common(WORST_HOSTS):
            self.stats.counter("failures_by_host")[host] += n
        return {
            "count": self.count,
            "successes": self.statuses["success"],
            "failed_to_download": self.statuses["failed_to_download"],
            "failed_to_resize": self.statuses["failed_to_resize"],
            "duration": end - start,
            "start_time": start,
            "end_time": end,
            "status_dict": dict(self.status),
        }
