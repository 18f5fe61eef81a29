"""Spark job: Common Crawl WARC (or WAT) files -> image-alt-text pairs and interleaved documents.

    spark-submit --master spark://HOST:7077 jobs/extract.py --input 'crawl/*.warc.gz' --output OUT
    curate extract --input warc.paths.gz --prefix s3://commoncrawl/ --output OUT   # local[*]
    curate extract --input wat.paths.gz --prefix s3://commoncrawl/ --output OUT    # WAT files

Writes ``OUT/pairs/*.parquet`` and ``OUT/docs/*.parquet`` (schemas in ``schemas/extract.py``),
one pair of files per input file, and ``OUT/stats.json``. A WAT file (``*.wat.gz``: the JSON
metadata of a WARC) gives pairs only (``source`` "wat"; no documents, page_lang or sizes);
WARC and WAT inputs mix freely in one job. One Spark task handles one file and writes its own
outputs, so OUT must be a location every executor can write: an object store, HDFS, or a
shared filesystem. Finished files are skipped on a rerun.
"""

import argparse
import sys

from vlcurate.jobs.options import add_config_flags, config_from_args
from vlcurate.jobs.spark import SparkExecutor
from vlcurate.pipeline import storage
from vlcurate.pipeline.extract.config import ExtractConfig
from vlcurate.pipeline.extract.stage import ExtractStage, summary_text
from vlcurate.pipeline.stage import run_stage


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
        help="WARC/WARC.gz or WAT (.wat.gz: pairs only) paths or URLs, globs "
        "('crawl/*.warc.gz'), or listing files with one path a line (.paths, .paths.gz, "
        ".txt, .lst; Common Crawl's warc.paths.gz or wat.paths.gz)",
    )
    parser.add_argument(
        "--output",
        "-o",
        required=True,
        help="output folder or URL; gets pairs/, docs/, _done/ and stats.json",
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
    """Extract every input into ``output``, one Spark task per file; returns the merged stats
    (also in stats.json)."""
    stage = ExtractStage(inputs, storage.absolute(output), config)
    return run_stage(stage, SparkExecutor(master, progress=progress))


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
    print(summary_text(stats, args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
