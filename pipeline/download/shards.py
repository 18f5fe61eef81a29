"""img2dataset's shards as the download stage reads them back: ``NNNNN.tar``, the
``NNNNN.parquet`` sidecar (one row per input URL, with ``status`` and ``error_message``) and
``NNNNN_stats.json``, which img2dataset writes last and which is the shard's own done marker."""

import json
import re

import fsspec
import pyarrow.parquet as pq

from vlcurate.pipeline import storage
from vlcurate.pipeline.stats import StageStats

STAGE = "download"
SHARD_DIGITS = 5  # img2dataset's oom_shard_count: 00000.tar, 00001.tar, ...
SHARD_UNFINISHED = "shard_unfinished"  # no _stats.json: img2dataset did not finish the shard
SHARD_INCOMPLETE = "shard_incomplete"  # a _stats.json that is cut short or counts other rows

ERROR_REASONS = (
    ("x-robots-tag", "robots_opt_out"),
    ("timed out", "timeout"),
    ("timeout", "timeout"),
    ("image too small", "too_small"),
    ("image area too large", "too_large"),
    ("cv_io_max_image_pixels", "too_large"),  # OpenCV refused a decompression bomb
    ("aspect ratio too large", "aspect_ratio"),
    ("decoding error", "decode_error"),
    ("cannot identify image", "decode_error"),
    ("truncated", "decode_error"),
    ("name or service not known", "dns_error"),
    ("connection refused", "connection_refused"),
    ("connection reset", "connection_reset"),
    ("remote end closed", "connection_reset"),
    ("hash mismatch", "hash_mismatch"),
)


CODE = re.compile(r"[a-z][a-z0-9_]*")


def shard_name(index: int) -> str:
    return f"{index:0{SHARD_DIGITS}d}"


def stats_path(output: str, shard: str) -> str:
    return storage.join(output, f"{shard}_stats.json")


def download_reason(status: str, error: str | None) -> str:
    """A stable drop reason for one sidecar row: our fetcher's reasons are already codes
    (``timeout``, ``http_404``, ``too_large_body``); img2dataset's resizer's are messages."""
    if error and CODE.fullmatch(error):
        return error
    message = (error or "").lower()
    if m := re.search(r"http error (\d{3})", message):
        return f"http_{m.group(1)}"
    for needle, reason in ERROR_REASONS:
        if needle in message:
            return reason
    return "resize_error" if status == "failed_to_resize" else "download_error"


def shard_problem(output: str, shard: str, rows: int) -> str | None:
    """Why shard ``shard`` of ``rows`` input URLs is not finished, or None when it is."""
    path = stats_path(output, shard)
    if not storage.exists(path):
        return SHARD_UNFINISHED
    try:
        count = json.loads(storage.read_text(path)).get("count")
    except ValueError:  # written only in part: img2dataset writes it in place, not renamed
        return SHARD_INCOMPLETE
    return None if count == rows else SHARD_INCOMPLETE


def shard_stats(output: str, shard: str) -> StageStats:
    """Kept and dropped images of one finished shard, from its sidecar's ``status`` and
    ``error_message`` columns."""
    stats = StageStats(STAGE)
    with fsspec.open(storage.join(output, f"{shard}.parquet"), "rb") as f:
        table = pq.read_table(f, columns=["status", "error_message"])
    for status, error in zip(
        table.column("status").to_pylist(), table.column("error_message").to_pylist(), strict=True
    ):
        if status == "success":
            stats.main.keep()
        else:
            stats.main.drop(download_reason(status, error))
    stats.extra["shards"] += 1
    return stats
