"""Download the candidates' images into img2dataset's WebDataset shards, politely and safely.

    curate download --input OUT/candidates --output OUT/shards
    curate download -i OUT/candidates -o OUT/shards --blocklist hashes.txt --opt-out domains.txt
    curate download -i OUT/candidates -o OUT/shards --repair   # the transient failures again
    spark-submit jobs/download.py --distributor pyspark --input s3://b/cands --output s3://b/shards

Reads the filter stage's ``pairs/`` (or any parquet with ``url`` and ``caption``) and drops,
before any request, unsafe URLs (see the README's security section), opted-out domains and
prefixes, and URLs on the block list. Then for each host: robots.txt first, at most
``--host-concurrency`` requests in flight and ``--host-delay`` seconds between them on this
machine, 429/503 retried after Retry-After; every request has one deadline (``--timeout``) and
a size cap, every redirect hop is checked. Shards are img2dataset's: ``NNNNN.tar``
(``key.jpg/.txt/.json``), ``NNNNN.parquet`` (a row per URL, with ``status`` and
``error_message``) and ``NNNNN_stats.json``, carrying our columns (uid, page_url, ...). A rerun
fetches only the shards not done (``_done/``); a killed run's workers die with it.
``stats.json`` accounts for every candidate: kept (downloaded) or dropped with a reason.
"""

import argparse
import sys

import pyarrow as pa

from vlcurate.jobs import spark as spark_util
from vlcurate.jobs.options import add_config_flags, config_from_layers
from vlcurate.jobs.safety_flags import add_safety_flags, safety_from
from vlcurate.pipeline import storage
from vlcurate.pipeline.config import ConfigError
from vlcurate.pipeline.download import candidates as inputs
from vlcurate.pipeline.download.stage import (
    DownloadConfig,
    DownloadStage,
    UnfinishedShards,
    format_summary,
    local_executor,
    plan_repair,
)
from vlcurate.pipeline.recipe import RecipeError
from vlcurate.pipeline.stage import OutputError, SettingsMismatch, check_output, run_stage

# Refused before any work (exit code 2), and failed after some (exit code 1; rerun to resume).
REFUSALS = (ConfigError, RecipeError, storage.InputError, OutputError, SettingsMismatch)
FAILURES = (UnfinishedShards,)


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="download", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add(
        "--input", "-i", required=True, help="the filter stage's output (or its pairs/), or parquet"
    )
    add("--output", "-o", required=True, help="the shard folder")
    add_safety_flags(parser)
    parser.add_argument(
        "--recipe",
        default=None,
        help="recipe whose download section sets image size and resize mode (flags given here "
        "win); default: the recipe named in the candidates' recipe column, if bundled",
    )
    add("--master", default=None, help="Spark master for --distributor pyspark (default: local)")
    add(
        "--repair",
        action="store_true",
        help="ask again only for the URLs whose last failure was transient (timeout, connection, "
        "DNS, 429, 5xx) into new shards beside the old; the stats add up",
    )
    add_config_flags(parser, DownloadConfig, layered=True)
    return parser


def checked_stage(args: argparse.Namespace) -> DownloadStage:
    """The stage the flags ask for; raises one of REFUSALS before anything is written."""
    if not storage.exists(args.input):
        raise storage.InputError(f"input not found: {args.input}")
    safety = safety_from(args)
    config_from_layers(DownloadConfig, args=args)  # the flags alone, before reading the input
    check_output(DownloadStage(pa.table({}), args.output))  # a file there: refused up front
    candidates = inputs.read_candidates(args.input)
    recipe_settings = inputs.recipe_download_settings(args.recipe, candidates)
    config = config_from_layers(DownloadConfig, recipe_settings, args=args)
    return DownloadStage(candidates, args.output, config, safety)


def executor(config: DownloadConfig, master: str | None = None, progress: bool = True):
    """The shards' executor: a Spark task per shard, or processes on this machine."""
    if config.distributor == "pyspark":
        return spark_util.SparkExecutor(master, progress=progress, app="curate-download")
    return local_executor(config, progress)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        stage = checked_stage(args)
        if args.repair and (stage := plan_repair(stage)) is None:
            print(f"download: nothing to repair in {args.output}")
            return 0
        stats = run_stage(stage, executor(stage.config, args.master))
    except (*REFUSALS, *FAILURES) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2 if isinstance(e, REFUSALS) else 1
    print(format_summary(stats, args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
