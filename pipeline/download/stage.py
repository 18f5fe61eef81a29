"""The download stage: candidates -> safety pre-filter -> img2dataset -> WebDataset shards.

img2dataset does the fetching, decoding, resizing and shard writing (``output_format=
webdataset``: ``NNNNN.tar`` with ``key.jpg/.txt/.json``, an ``NNNNN.parquet`` sidecar and
``NNNNN_stats.json`` per shard). It runs in ``incremental`` mode: a shard whose ``_stats.json``
exists is done and skipped, so a rerun after a kill fetches only the missing shards, and the
input is sharded the same way every time because the URL list is written in a fixed order.
"""

import json
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vlcurate.pipeline import storage
from vlcurate.pipeline.download.safety import SafetyConfig, UrlSafety
from vlcurate.pipeline.stats import StageStats

STAGE = "download"
# img2dataset owns these names in its output; ours are renamed on the way in.
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
class DownloadConfig:
    image_size: int = field(default=256, metadata={"help": "target side in pixels"})
    resize_mode: str = field(
        default="border",
        metadata={"help": "img2dataset resize mode: no, border, keep_ratio, center_crop"},
    )
    resize_only_if_bigger: bool = field(
        default=False, metadata={"help": "leave images smaller than image_size as they are"}
    )
    processes: int = field(default=0, metadata={"help": "download processes; 0: one per core"})
    threads: int = field(default=0, metadata={"help": "threads per process; 0: 64 per core"})
    samples_per_shard: int = field(default=10000, metadata={"help": "images per output shard"})
    timeout: int = field(default=10, metadata={"help": "seconds before a request times out"})
    retries: int = field(default=0, metadata={"help": "retries of a failed request"})
    encode_quality: int = field(default=95, metadata={"help": "JPEG quality of the shards"})
    min_image_size: int = field(default=0, metadata={"help": "smaller images are too_small"})
    max_image_area: int = field(
        default=89_478_485,
        metadata={
            "help": "larger images (pixels) are dropped; also caps OpenCV's decoder, so a "
            "decompression bomb is refused before it is decoded (Pillow's default limit)"
        },
    )
    max_aspect_ratio: float = field(default=math.inf, metadata={"help": "wider images dropped"})
    distributor: str = field(
        default="multiprocessing",
        metadata={"help": "multiprocessing, or pyspark (the active session)"},
    )
    robots_directives: list[str] = field(
        default_factory=lambda: ["noai", "noimageai", "noindex", "noimageindex"],
        metadata={"help": "X-Robots-Tag directives that opt an image out (img2dataset's)"},
    )
    user_agent_token: str = field(default="vlcurate", metadata={"help": "added to the User-Agent"})


def download_reason(status: str, error: str | None) -> str:
    """A stable drop reason for one img2dataset result row."""
    message = (error or "").lower()
    if m := re.search(r"http error (\d{3})", message):
        return f"http_{m.group(1)}"
    for needle, reason in (
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
    ):
        if needle in message:
            return reason
    return "resize_error" if status == "failed_to_resize" else "download_error"


def _columns_to_carry(schema: pa.Schema) -> list[str]:
    return [n for n in schema.names if n not in RESERVED]


def prepare_url_list(
    candidates: pa.Table, safety: UrlSafety, folder: str
) -> tuple[StageStats, str]:
    """Drop unsafe URLs (counted by reason) and write the rest, in input order, as the parquet
    URL list img2dataset reads; also write the unsafe rows for inspection. Returns the
    pre-filter's stats, the URL list's path and the columns to carry into the shards."""
    stats = StageStats(STAGE)
    reasons = [safety.reason(u) for u in candidates.column("url").to_pylist()]
    unsafe = pa.array([r is not None for r in reasons])
    for reason, n in Counter(r for r in reasons if r is not None).items():
        stats.main.drop(reason, n)
    stats.extra["unsafe_urls"] = int(pc.sum(unsafe).as_py() or 0)
    safe = candidates.filter(pc.invert(unsafe))
    safe = safe.rename_columns([RENAMED.get(n, n) for n in safe.schema.names])
    url_list = storage.join(folder, "_input", "urls.parquet")
    with storage.parquet_writer(url_list, safe.schema) as writer:
        writer.write_table(safe)
    dropped = candidates.filter(unsafe).append_column(
        "drop_reason", pa.array([r for r in reasons if r], pa.string())
    )
    with storage.parquet_writer(
        storage.join(folder, "_input", "unsafe.parquet"), dropped.schema
    ) as writer:
        writer.write_table(dropped)
    return stats, url_list, _columns_to_carry(safe.schema)


def _sized(config: DownloadConfig) -> tuple[int, int]:
    cores = os.cpu_count() or 1
    return config.processes or cores, config.threads or 64


def run_img2dataset(url_list: str, output: str, carry: list[str], config: DownloadConfig) -> None:
    # OpenCV decodes the images; its own pixel cap stops a bomb before memory is allocated.
    os.environ["CV_IO_MAX_IMAGE_PIXELS"] = str(config.max_image_area)
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    from img2dataset import download

    processes, threads = _sized(config)
    download(
        url_list=url_list,
        input_format="parquet",
        url_col="url",
        caption_col="caption",
        save_additional_columns=carry,
        output_folder=output,
        output_format="webdataset",
        incremental_mode="incremental",
        image_size=config.image_size,
        resize_mode=config.resize_mode,
        resize_only_if_bigger=config.resize_only_if_bigger,
        processes_count=processes,
        thread_count=threads,
        number_sample_per_shard=config.samples_per_shard,
        timeout=config.timeout,
        retries=config.retries,
        encode_quality=config.encode_quality,
        min_image_size=config.min_image_size,
        max_image_area=config.max_image_area,
        max_aspect_ratio=config.max_aspect_ratio,
        distributor=config.distributor,
        disallowed_header_directives=config.robots_directives,
        user_agent_token=config.user_agent_token,
        enable_wandb=False,
    )


def shard_stats(output: str) -> StageStats:
    """Kept and dropped images from img2dataset's finished shards (those with _stats.json):
    the sidecar parquet's ``status`` and ``error_message`` columns."""
    stats = StageStats(STAGE)
    fs, path = fsspec.core.url_to_fs(output)
    for stats_file in sorted(fs.glob(path.rstrip("/") + "/*_stats.json")):
        shard = stats_file.rsplit("/", 1)[-1].split("_", 1)[0]
        table = pq.read_table(
            fs.open(f"{path.rstrip('/')}/{shard}.parquet", "rb"),
            columns=["status", "error_message"],
        )
        for status, error in zip(
            table.column("status").to_pylist(),
            table.column("error_message").to_pylist(),
            strict=True,
        ):
            if status == "success":
                stats.main.keep()
            else:
                stats.main.drop(download_reason(status, error))
        stats.extra["shards"] += 1
    return stats


def download_stage(
    candidates: pa.Table, output: str, config: DownloadConfig, safety: SafetyConfig
) -> dict:
    """The whole stage; returns (and writes) ``stats.json``."""
    output = storage.absolute(output)
    storage.makedirs(output)
    # img2dataset's incremental mode reads every *.json in the folder as a shard's stats, so the
    # previous run's stats.json (rewritten at the end anyway) must not be there while it runs.
    storage.remove(storage.join(output, "stats.json"))
    prefilter, url_list, carry = prepare_url_list(candidates, UrlSafety(safety), output)
    run_img2dataset(url_list, output, carry, config)
    stats = shard_stats(output)
    stats.merge(prefilter)
    settings = {**config.__dict__, "max_aspect_ratio": str(config.max_aspect_ratio)}
    result = stats.to_dict(config=settings, safety=safety.__dict__, output_format="webdataset")
    if result["in"] != candidates.num_rows:
        raise RuntimeError(
            f"download accounting: {candidates.num_rows} candidates but {result['in']} counted; "
            "some shards are unfinished (rerun to complete them)"
        )
    storage.write_text_atomic(
        storage.join(output, "stats.json"), json.dumps(result, indent=2) + "\n"
    )
    return result
