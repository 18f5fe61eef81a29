"""Spark job: Common Crawl WARC files -> image-alt-text pairs and interleaved documents.

    spark-submit --master spark://HOST:7077 jobs/extract.py --input 'crawl/*.warc.gz' --output OUT
    curate extract --input warc.paths.gz --prefix s3://commoncrawl/ --output OUT   # local[*]

Writes ``OUT/pairs/*.parquet`` and ``OUT/docs/*.parquet`` (schemas in ``schemas/extract.py``),
one pair of files per input WARC, and ``OUT/stats.json``. One Spark task handles one WARC file
and writes its own outputs, so OUT must be a location every executor can write: an object
store, HDFS, or a shared filesystem. Finished files are skipped on a rerun.
"""

import argparse
import dataclasses
import json
import sys

from vlcurate.jobs import spark as spark_util
from vlcurate.jobs.options import add_config_flags, config_from_args
from vlcurate.pipeline import storage
from vlcurate.pipeline.extract.stage import STAGE, ExtractConfig, extract_file_to, shard_name
from vlcurate.pipeline.stats import StageStats
from vlcurate.schemas.extract import SCHEMA_VERSION


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="extract", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--input",
        "-i",
        nargs="+",
        required=True,
        metavar="PATH",
        help="WARC/WARC.gz paths or URLs, globs ('crawl/*.warc.gz'), or listing "
        "files with one path a line (.paths, .paths.gz, .txt, .lst)",
    )
    parser.add_argument(
        "--output",
        "-o",
        required=True,
        help="output folder or URL; gets pairs/, docs/, _stats/ and stats.json",
    )
    parser.add_argument(
        "--prefix",
        default=None,
        help="joined to relative lines of listing files (for Common Crawl: its "
        "data URL); default: the listing's own folder",
    )
    parser.add_argument(
        "--master",
        default=None,
        help="Spark master URL; default: whatever spark-submit set, else local[*]",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_config_flags(parser, ExtractConfig)
    return parser


def run(
    inputs: list[str],
    output: str,
    config: ExtractConfig,
    master: str | None = None,
    progress: bool = True,
) -> dict:
    """Extract every input into ``output``; return the merged stats (also in stats.json)."""
    output = storage.absolute(output)
    for sub in ("pairs", "docs", "_stats"):
        storage.remove_stale_temporaries(storage.join(output, sub))
    todo = [
        p
        for p in inputs
        if not storage.exists(storage.join(output, "_stats", f"{shard_name(p)}.json"))
    ]
    results = []
    if todo:
        spark = spark_util.session("curate-extract", master)
        rdd = spark.sparkContext.parallelize(todo, len(todo))
        with spark_util.progress(spark, len(todo), "extract", enabled=progress):
            results = rdd.map(lambda path: extract_file_to(path, output, config)).collect()
    done = set(todo)
    for path in inputs:  # files finished by an earlier run
        if path not in done:
            marker = storage.join(output, "_stats", f"{shard_name(path)}.json")
            results.append(json.loads(storage.read_text(marker)))
    merged = StageStats(STAGE)
    for result in results:
        merged.merge(StageStats.from_dict(result))
    summary = merged.to_dict(
        schema_version=SCHEMA_VERSION,
        inputs=len(inputs),
        resumed=len(inputs) - len(todo),
        config=dataclasses.asdict(config),
    )
    storage.write_text_atomic(
        storage.join(output, "stats.json"), json.dumps(summary, indent=2) + "\n"
    )
    return summary


def format_summary(stats: dict, output: str) -> str:
    files = stats["files"]
    lines = [
        f"extract: {stats['inputs']} input files ({files['kept']} read, "
        f"{sum(files['dropped'].values())} failed, {stats['resumed']} already done) -> {output}",
        f"  response records in: {stats['in']:>8}",
        f"  HTML pages kept:     {stats['kept']:>8}   -> docs/  ({stats.get('docs', 0)} documents)",
        f"  image-text pairs:    {stats.get('pairs', 0):>8}   -> pairs/ "
        f"(of {stats['images']['in']} image elements)",
    ]
    for title, dropped in (
        ("records dropped", stats["dropped"]),
        ("files failed", files["dropped"]),
        ("images not paired", stats["images"]["dropped"]),
    ):
        if dropped:
            lines.append(f"  {title}:")
            lines.extend(
                f"    {reason:<24} {n:>8}"
                for reason, n in sorted(dropped.items(), key=lambda kv: -kv[1])
            )
    if stats.get("files_damaged"):
        lines.append(f"  damaged files (read up to the damage): {stats['files_damaged']}")
    lines.append(
        f"  accounting: in {stats['in']} == kept {stats['kept']} + dropped "
        f"{sum(stats['dropped'].values())}  (stats.json)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None, default_master: str | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        inputs = storage.expand_inputs(args.input, args.prefix)
    except storage.InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    stats = run(
        inputs,
        args.output,
        config_from_args(ExtractConfig, args),
        args.master or default_master,
        progress=not args.no_progress,
    )
    print(format_summary(stats, args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
