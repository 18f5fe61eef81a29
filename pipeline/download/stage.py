"""The download stage: candidates -> safety pre-filter -> img2dataset -> WebDataset shards.

img2dataset does the fetching, decoding, resizing and shard writing (``output_format=
webdataset``: ``NNNNN.tar`` with ``key.jpg/.txt/.json``, an ``NNNNN.parquet`` sidecar and
``NNNNN_stats.json`` per shard). The stage's units are img2dataset's shards: the safe URLs are
written in input order to ``_input/urls.parquet``, and img2dataset cuts that list the same way
every time, shard k holding rows ``[k * samples_per_shard, (k + 1) * samples_per_shard)``.
:class:`~vlcurate.pipeline.download.executor.Img2DatasetExecutor` downloads every unit not yet
done in one img2dataset call (its ``incremental`` mode skips the shards whose ``_stats.json``
exists), then the runner (:mod:`vlcurate.pipeline.stage`) marks each finished shard done with
the stats read back from its sidecar, and writes ``stats.json``.
"""

import hashlib
from collections import Counter
from dataclasses import asdict, dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from vlcurate.pipeline import storage
from vlcurate.pipeline.download.candidates import checked_candidates
from vlcurate.pipeline.download.config import SPEED_FIELDS, DownloadConfig
from vlcurate.pipeline.download.executor import Img2DatasetExecutor
from vlcurate.pipeline.download.safety import SafetyConfig, UrlSafety
from vlcurate.pipeline.download.shards import (
    STAGE,
    download_reason,
    shard_name,
    shard_problem,
    shard_stats,
)
from vlcurate.pipeline.stage import Stage, Unit, run_stage
from vlcurate.pipeline.stats import StageStats

__all__ = ["STAGE", "DownloadConfig", "DownloadStage", "download_reason", "download_stage"]

INPUT = "_input"  # the URL list img2dataset reads, and the unsafe URLs, for inspection
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


class UnfinishedShards(RuntimeError):
    """img2dataset ended with shards unfinished: their candidates are not accounted for."""


@dataclass
class UrlList:
    """The pre-filter's result: the safe candidates (img2dataset's input), the unsafe ones with
    their ``drop_reason``, the pre-filter's stats and the columns carried into the shards."""

    safe: pa.Table
    unsafe: pa.Table
    stats: StageStats
    carry: list[str]

    def digest(self) -> str:
        """What the shards are cut from: the safe URLs, in order."""
        urls = "\n".join(self.safe.column("url").to_pylist())
        return hashlib.sha256(urls.encode()).hexdigest()[:16]


def prefilter(candidates: pa.Table, safety: UrlSafety) -> UrlList:
    """Drop unsafe URLs (counted by reason); the rest keep their input order."""
    stats = StageStats(STAGE)
    reasons = [safety.reason(u) for u in candidates.column("url").to_pylist()]
    unsafe = pa.array([r is not None for r in reasons], pa.bool_())
    for reason, n in Counter(r for r in reasons if r is not None).items():
        stats.main.drop(reason, n)
    stats.extra["unsafe_urls"] = int(pc.sum(unsafe).as_py() or 0)
    safe = candidates.filter(pc.invert(unsafe))
    safe = safe.rename_columns([RENAMED.get(n, n) for n in safe.schema.names])
    dropped = candidates.filter(unsafe).append_column(
        "drop_reason", pa.array([r for r in reasons if r], pa.string())
    )
    carry = [n for n in safe.schema.names if n not in RESERVED]
    return UrlList(safe, dropped, stats, carry)


def url_list_path(output: str) -> str:
    return storage.join(output, INPUT, "urls.parquet")


def write_url_list(urls: UrlList, output: str) -> None:
    """Write the URL list img2dataset reads, and the unsafe rows for inspection."""
    unsafe_path = storage.join(output, INPUT, "unsafe.parquet")
    for table, path in ((urls.safe, url_list_path(output)), (urls.unsafe, unsafe_path)):
        with storage.parquet_writer(path, table.schema) as writer:
            writer.write_table(table)


@dataclass
class DownloadStage(Stage):
    candidates: pa.Table
    output: str
    config: DownloadConfig = field(default_factory=DownloadConfig)
    safety: SafetyConfig = field(default_factory=SafetyConfig)

    name = STAGE
    folders = (INPUT,)

    def __post_init__(self) -> None:
        self.output = storage.absolute(self.output)
        self.candidates = checked_candidates(self.candidates)
        self.urls = prefilter(self.candidates, UrlSafety(self.safety))
        self.url_list = url_list_path(self.output)

    def settings(self) -> dict:
        shaping = {k: v for k, v in self.config.as_json().items() if k not in SPEED_FIELDS}
        return {
            "output_format": "webdataset",
            **shaping,
            "safety": asdict(self.safety),
            "input_urls_digest": self.urls.digest(),
        }

    def rows(self, shard: str) -> tuple[int, int]:
        """The rows ``[begin, end)`` of the URL list that ``shard`` holds."""
        begin = int(shard) * self.config.samples_per_shard
        return begin, min(begin + self.config.samples_per_shard, self.urls.safe.num_rows)

    def units(self) -> list[Unit]:
        count = -(-self.urls.safe.num_rows // self.config.samples_per_shard)  # rounded up
        names = [shard_name(k) for k in range(count)]
        return [Unit(n, "{}[{}:{}]".format(self.url_list, *self.rows(n))) for n in names]

    def check(self, unit: Unit) -> str | None:
        begin, end = self.rows(unit.name)
        return shard_problem(self.output, unit.name, end - begin)

    def prepare(self, units: list[Unit], todo: list[Unit]) -> None:
        # img2dataset's incremental mode reads every *.json in the folder as a shard's stats,
        # so the last run's stats.json (rewritten at the end) must not be there while it runs.
        storage.remove(storage.join(self.output, "stats.json"))
        write_url_list(self.urls, self.output)

    def process(self, unit: Unit, device: str = "cpu") -> StageStats:
        return shard_stats(self.output, unit.name)

    def finish(self, stats: StageStats) -> dict:
        stats.merge(self.urls.stats)
        stats.extra["shards"] += 0  # present, also when there is none
        if stats.main.seen != self.candidates.num_rows:
            unfinished = ", ".join(sorted(stats.counter("refused_units")))
            raise UnfinishedShards(
                f"{STAGE}: {self.candidates.num_rows} candidates but {stats.main.seen} counted; "
                f"shards {unfinished} are unfinished (rerun to complete them)"
            )
        return {
            "config": self.config.as_json(),
            "safety": asdict(self.safety),
            "output_format": "webdataset",
        }


def download_stage(
    candidates: pa.Table,
    output: str,
    config: DownloadConfig,
    safety: SafetyConfig,
    executor=None,
) -> dict:
    """The whole stage with img2dataset's own distributor; returns (and writes) ``stats.json``."""
    stage = DownloadStage(candidates, output, config, safety)
    return run_stage(stage, executor or Img2DatasetExecutor())
