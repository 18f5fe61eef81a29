"""Download the candidates' images into img2dataset's WebDataset shards, politely and safely.

    curate download --input OUT/candidates --output OUT/shards
    curate download --input OUT/candidates --output OUT/shards --blocklist hashes.txt \
        --opt-out spawning-domains.txt --host-concurrency 2 --host-delay 0.2
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
from vlcurate.pipeline import storage
from vlcurate.pipeline.config import ConfigError
from vlcurate.pipeline.download import candidates as inputs
from vlcurate.pipeline.download.safety import SafetyConfig
from vlcurate.pipeline.download.stage import (
    DownloadConfig,
    DownloadStage,
    UnfinishedShards,
    format_summary,
    local_executor,
)
from vlcurate.pipeline.recipe import RecipeError
from vlcurate.pipeline.stage import OutputError, SettingsMismatch, check_output, run_stage

# Refused before any work (exit code 2), and failed after some (exit code 1; rerun to resume).
REFUSALS = (ConfigError, RecipeError, storage.InputError, OutputError, SettingsMismatch)
FAILURES = (UnfinishedShards,)
LOOPBACK = ["127.0.0.0/8", "::1/128"]


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="download", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add(
        "--input", "-i", required=True, help="the filter stage's output (or its pairs/), or parquet"
    )
    add("--output", "-o", required=True, help="the shard folder")
    parser.add_argument(
        "--allow-private-network",
        nargs="*",
        metavar="CIDR",
        default=None,
        help="for tests and the demo only: also fetch from these private networks or "
        "ADDRESS:PORT pairs (127.0.0.1:8765) "
        f"(no value: loopback, {' '.join(LOOPBACK)}); other private, "
        "link-local and reserved addresses stay blocked",
    )
    parser.add_argument(
        "--allowed-ports",
        nargs="*",
        type=int,
        default=[80, 443, 8080, 8443],
        metavar="PORT",
        help="explicit ports public hosts may use (default: 80 443 8080 8443)",
    )
    parser.add_argument(
        "--recipe",
        default=None,
        help="recipe whose download section sets image size and resize mode (flags given here "
        "win); default: the recipe named in the candidates' recipe column, if bundled",
    )
    add("--master", default=None, help="Spark master for --distributor pyspark (default: local)")
    add_config_flags(parser, DownloadConfig, layered=True)
    return parser


def checked_stage(args: argparse.Namespace) -> DownloadStage:
    """The stage the flags ask for; raises one of REFUSALS before anything is written."""
    if not storage.exists(args.input):
        raise storage.InputError(f"input not found: {args.input}")
    allow = args.allow_private_network  # None: flag absent; []: flag alone, meaning loopback
    networks = [] if allow is None else allow or LOOPBACK
    safety = SafetyConfig(allowed_ports=args.allowed_ports, allow_networks=networks)
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
        stats = run_stage(stage, executor(stage.config, args.master))
    except (*REFUSALS, *FAILURES) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2 if isinstance(e, REFUSALS) else 1
    print(format_summary(stats, args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
