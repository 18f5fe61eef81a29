"""The download stage: candidates -> pre-filter -> our fetching -> img2dataset's shards.

Before any request, every candidate URL passes the SSRF pre-filter (:mod:`.safety`), the
opt-out lists and the URL block list (:mod:`.lists`); the rest are written to
``_input/urls.parquet``, hosts interleaved (each host's k-th URL comes in the k-th round), so
that a host's URLs spread across shards instead of holding one shard up behind its politeness
interval. The stage's units are shards of that list: shard k holds rows ``[k * samples_per_shard,
(k + 1) * samples_per_shard)``. Each is downloaded by :func:`~.worker.download_shard` (threads,
robots.txt, per-host politeness, checked redirects, a deadline and a cap per request) into
img2dataset's format: ``NNNNN.tar`` with ``key.jpg/.txt/.json``, an ``NNNNN.parquet`` sidecar
with a row per URL and ``NNNNN_stats.json``. Units run in this process, in one spawned process
per core (``multiprocessing``), or as Spark tasks (``pyspark``).
"""

import math
import os
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from vlcurate.pipeline import storage
from vlcurate.pipeline.download import repair
from vlcurate.pipeline.download.candidates import checked_candidates
from vlcurate.pipeline.download.config import SPEED_FIELDS, DownloadConfig
from vlcurate.pipeline.download.context import ROBOTS, fetching, remove_gate
from vlcurate.pipeline.download.lists import BLOCKLISTED, Blocklist, OptOut
from vlcurate.pipeline.download.prefilter import (
    INPUT,
    prefilter,
    scrub,
    url_list_path,
    write_url_list,
)
from vlcurate.pipeline.download.robots import forget_unreachable
from vlcurate.pipeline.download.safety import SafetyConfig, UrlSafety
from vlcurate.pipeline.download.shards import (
    STAGE,
    download_reason,
    shard_name,
    shard_problem,
    shard_stats,
)
from vlcurate.pipeline.download.worker import PARTIAL, WORST_HOSTS, download_shard
from vlcurate.pipeline.executors import LocalExecutor
from vlcurate.pipeline.stage import OutputError, Stage, Unit, digest, plan, run_stage
from vlcurate.pipeline.stats import StageStats

__all__ = ["STAGE", "DownloadConfig", "DownloadStage", "download_reason", "download_stage"]


class UnfinishedShards(RuntimeError):
    """The run ended with shards unfinished: their candidates are not accounted for."""


@dataclass
class DownloadStage(Stage):
    candidates: pa.Table
    output: str
    config: DownloadConfig = field(default_factory=DownloadConfig)
    safety: SafetyConfig = field(default_factory=SafetyConfig)

    name = STAGE
    folders = (INPUT, ROBOTS, repair.REPAIR)

    def __post_init__(self) -> None:
        self.output = storage.absolute(self.output)
        self.candidates = checked_candidates(self.candidates)
        blocklist = Blocklist.from_files(self.config.blocklist)
        opt_out = OptOut.from_files(self.config.opt_out)
        self.lists = {"blocklist": blocklist.digest(), "opt_out": opt_out.digest()}
        self.blocklisting = len(blocklist) > 0
        self.urls = prefilter(self.candidates, UrlSafety(self.safety), opt_out, blocklist)
        self.url_count = self.urls.safe.num_rows
        self.urls_digest = self.urls.digest()
        self.url_list = url_list_path(self.output)
        self.sources = self._sources()

    def _sources(self) -> dict[str, tuple[str, int, int]]:
        """Each shard's URL list and rows ``[begin, end)``: the stage's URL list cut in shards
        of ``samples_per_shard``, then each repair round's list, cut the same way."""
        per = self.config.samples_per_shard
        lists = [(self.url_list, 0, self.url_count)]
        lists += [(r.path, r.first_shard, r.rows) for r in repair.rounds(self.output)]
        sources = {}
        for path, first, count in lists:
            for k in range(-(-count // per)):  # rounded up
                begin = k * per
                sources[shard_name(first + k)] = (path, begin, min(begin + per, count))
        return sources

    def __getstate__(self) -> dict:
        """What a worker process needs: not the tables (it reads its rows from the URL list)."""
        state = dict(self.__dict__)
        state["candidates"] = state["urls"] = None
        return state

    def settings(self) -> dict:
        shaping = {k: v for k, v in self.config.as_json().items() if k not in SPEED_FIELDS}
        shaping.pop("blocklist"), shaping.pop("opt_out")  # files: their contents count
        return {
            "output_format": "webdataset",
            **shaping,
            "lists": self.lists,
            "safety": asdict(self.safety),
            "input_urls_digest": self.urls_digest,
        }

    def units(self) -> list[Unit]:
        return [Unit(name, "{}[{}:{}]".format(*where)) for name, where in self.sources.items()]

    def prepare(self, units: list[Unit], todo: list[Unit]) -> None:
        if todo and not self.config.robots:
            print(
                f"warning: {STAGE}: robots.txt is not read (--no-robots): every host's "
                "Disallow rules are ignored",
                file=sys.stderr,
            )
        storage.remove_tree(storage.join(self.output, PARTIAL))  # what a killed run left
        write_url_list(self.urls, self.output)

    def process(self, unit: Unit, device: str = "cpu") -> StageStats:
        path, begin, end = self.sources[unit.name]
        if shard_problem(self.output, unit.name, end - begin) is None:
            return shard_stats(self.output, unit.name)  # whole, its marker not yet written
        with fsspec.open(path, "rb") as f:
            rows = pq.read_table(f).slice(begin, end - begin)
        context = fetching(self.config, self.safety, self.output, self.run_key())
        return download_shard(int(unit.name), rows, self.output, context)

    def run_key(self) -> str:
        """Names the run's politeness table, shared by its processes on one machine."""
        return digest({"output": self.output, **self.settings()})

    def finish(self, stats: StageStats) -> dict:
        stats.merge(self.urls.stats)
        for round_ in repair.rounds(self.output):  # each repaired URL counts once: its latest
            for reason, n in repair.superseded(round_).items():
                stats.main.seen -= n
                stats.main.dropped[reason] -= n
        stats.main.dropped = +stats.main.dropped  # no zero counts
        remove_gate(self.run_key())
        if self.blocklisting:
            self.scrub_listed()
        stats.extra["shards"] += 0  # present, also when there is none
        worst = stats.counter("failures_by_host").most_common(WORST_HOSTS)
        stats.counters["failures_by_host"] = Counter(dict(worst))
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

    def scrub_listed(self) -> None:
        """Blank, in the URL lists, the rows of images the block list matched by their bytes
        (their sidecar rows were blanked as they were written)."""
        digits = math.ceil(math.log10(max(2, self.config.samples_per_shard)))
        found: dict[str, list[int]] = {}
        for name, (path, begin, _) in self.sources.items():
            with fsspec.open(storage.join(self.output, f"{name}.parquet"), "rb") as f:
                side = pq.read_table(f, columns=["key", "url", "error_message"]).to_pylist()
            base = int(name) * 10**digits
            for row in side:
                if row["error_message"] == BLOCKLISTED and row["url"] is None:
                    found.setdefault(path, []).append(begin + int(row["key"]) - base)
        for path, rows in found.items():
            scrub(path, rows)


def plan_repair(stage: DownloadStage) -> DownloadStage | None:
    """The stage with a new repair round of the transient failures, or None when none is left.
    Every shard must be done first (a killed run or repair: rerun it, then repair)."""
    units = stage.units()
    _, todo = plan(stage, units)
    if todo:
        raise OutputError(
            f"{STAGE}: {len(todo)} of {len(units)} shards in {stage.output} are not done: "
            "rerun the download (without --repair) to finish them, then repair"
        )
    names = [u.name for u in units]
    if repair.plan_round(stage.output, names, stage.config.samples_per_shard) is None:
        return None
    forget_unreachable(storage.join(stage.output, ROBOTS))  # a failed robots.txt: ask again
    return DownloadStage(stage.candidates, stage.output, stage.config, stage.safety)


def local_executor(config: DownloadConfig, progress: bool = True) -> LocalExecutor:
    """One spawned process per core (or ``processes``), each downloading whole shards with
    ``threads`` threads. (``pyspark``: ``vlcurate.jobs.spark.SparkExecutor``, a task a shard.)"""
    return LocalExecutor(["cpu"] * (config.processes or os.cpu_count() or 1), progress=progress)


def download_stage(
    candidates: pa.Table,
    output: str,
    config: DownloadConfig,
    safety: SafetyConfig,
    executor=None,
) -> dict:
    """The whole stage; returns (and writes) ``stats.json``."""
    stage = DownloadStage(candidates, output, config, safety)
    return run_stage(stage, executor or local_executor(config))


def format_summary(stats: dict, output: str) -> str:
    """What ``curate download`` prints: counts, the success rate, each reason's share, and the
    hosts that failed most."""
    total = stats["in"] or 1
    lines = [
        f"download: {stats['in']} candidates -> {stats['kept']} images in "
        f"{stats.get('shards', 0)} shards -> {output} ({stats['kept'] / total:.1%} succeeded)"
    ]
    for reason, n in sorted(stats["dropped"].items(), key=lambda kv: -kv[1]):
        lines.append(f"  {reason:<28} {n:>8}  {n / total:6.1%}")
    worst = list(stats.get("failures_by_host", {}).items())
    if worst:
        worst.sort(key=lambda kv: -kv[1])
        lines.append("  most failures: " + ", ".join(f"{h} {n}" for h, n in worst[:5]))
    lines.append(
        f"  accounting: in {stats['in']} == kept {stats['kept']} + dropped "
        f"{sum(stats['dropped'].values())}"
    )
    return "\n".join(lines)
