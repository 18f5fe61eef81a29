"""Download the candidates' images into WebDataset shards, with img2dataset.

    curate download --input OUT/candidates --output OUT/shards
    curate download --input OUT/candidates --output OUT/shards --distributor pyspark

Reads the filter stage's ``pairs/`` (or any parquet with ``url`` and ``caption``). Unsafe URLs
are dropped before any request (private and reserved addresses, internal names, credentials,
odd ports and schemes; see the README's security section). img2dataset then writes
``NNNNN.tar`` (``key.jpg``, ``key.txt``, ``key.json``), ``NNNNN.parquet`` and
``NNNNN_stats.json`` per shard, carrying our columns (uid, page_url, provenance, language, ...)
into every sample's json and the parquet. It runs in img2dataset's ``incremental`` mode: a rerun
fetches only the shards without ``_stats.json``. ``OUT/shards/stats.json`` accounts for every
candidate: kept (downloaded) or dropped with a reason.
"""

import argparse
import sys

import pyarrow.parquet as pq

from vlcurate.jobs import spark as spark_util
from vlcurate.jobs.options import add_config_flags, config_from_layers
from vlcurate.pipeline import storage
from vlcurate.pipeline.download.safety import SafetyConfig
from vlcurate.pipeline.download.stage import DownloadConfig, download_stage
from vlcurate.pipeline.recipe import RecipeError, bundled_recipes, load_recipe

LOOPBACK = ["127.0.0.0/8", "::1/128"]


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="download", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--input",
        "-i",
        required=True,
        help="the filter stage's output folder (or its pairs/), or a parquet file",
    )
    parser.add_argument("--output", "-o", required=True, help="the shard folder")
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
    add_config_flags(parser, DownloadConfig, layered=True)
    return parser


def read_candidates(url: str):
    path = storage.absolute(url)
    inner = storage.join(path, "pairs")
    return pq.read_table(inner if storage.exists(inner) else path)


def recipe_download_settings(name: str | None, candidates) -> dict:
    """The download section of ``name``, or of the bundled recipe the candidates came from."""
    if name is None and "recipe" in candidates.schema.names and candidates.num_rows:
        named = candidates.column("recipe")[0].as_py().split("/", 1)[0]
        name = named if named in bundled_recipes() else None
    return load_recipe(name).download if name else {}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not storage.exists(args.input):
        print(f"error: input not found: {args.input}", file=sys.stderr)
        return 2
    allow = args.allow_private_network  # None: flag absent; []: flag alone, meaning loopback
    networks = [] if allow is None else allow or LOOPBACK
    safety = SafetyConfig(allowed_ports=args.allowed_ports, allow_networks=networks)
    candidates = read_candidates(args.input)
    try:
        recipe_settings = recipe_download_settings(args.recipe, candidates)
    except RecipeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    config = config_from_layers(DownloadConfig, recipe_settings, args=args)
    if config.distributor == "pyspark":
        spark_util.session("curate-download", "local[*]")  # img2dataset uses the active session
    stats = download_stage(candidates, args.output, config, safety)
    print(format_summary(stats, args.output))
    return 0


def format_summary(stats: dict, output: str) -> str:
    lines = [
        f"download: {stats['in']} candidates -> {stats['kept']} images in "
        f"{stats.get('shards', 0)} shards -> {output}"
    ]
    lines += [
        f"  {r:<28} {n:>8}" for r, n in sorted(stats["dropped"].items(), key=lambda kv: -kv[1])
    ]
    lines.append(
        f"  accounting: in {stats['in']} == kept {stats['kept']} + dropped "
        f"{sum(stats['dropped'].values())}"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
