"""Export a final output as a release: metadata parquet that anyone re-downloads with img2dataset.

    curate export --format laion --input OUT/final --output release/
    img2dataset --url_list release/ --input_format parquet --url_col URL --caption_col TEXT \\
        --output_format webdataset --output_folder shards/

Writes to ``--output`` one ``NNNNN.parquet`` per final shard, in LAION-5B's columns (``URL``,
``TEXT``, ``WIDTH``, ``HEIGHT``, ``similarity``, ``punsafe``, ``pwatermark``, ``hash``,
``LANGUAGE``), DataComp's ``uid`` and the source ``page_url``; the scores' models are in each
file's schema metadata, and ``hash`` is LAION's (MurmurHash3 of URL + TEXT, see
``schemas/export.py``). Values come from the final shards' parquet sidecars; no image is read.
``stats.json`` accounts for every final sample. A killed export resumes; exporting another
selection into the same folder is refused. The input must be a finished `curate select` output
(its ``manifest.json``); anything else is refused with one line and exit code 2.
"""

import argparse
import sys

from vlcurate.jobs.options import add_config_flags, config_from_args
from vlcurate.pipeline import storage
from vlcurate.pipeline.config import ConfigError
from vlcurate.pipeline.export.config import ExportConfig
from vlcurate.pipeline.export.stage import export
from vlcurate.pipeline.stage import OutputError, SettingsMismatch


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--input", "-i", required=True, help="the final output `curate select` wrote (OUT/final)")
    add("--output", "-o", required=True, help="folder for the release's NNNNN.parquet files")
    add("--no-progress", action="store_true", help="hide the progress bar")
    add_config_flags(parser, ExportConfig)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = config_from_args(ExportConfig, args)
    try:
        stats = export(args.input, args.output, config, progress=not args.no_progress)
    except (ConfigError, storage.InputError, OutputError, SettingsMismatch) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_summary(stats, args.output))
    return 0


def format_summary(stats: dict, output: str) -> str:
    dropped = ", ".join(f"{k} {v}" for k, v in sorted(stats["dropped"].items())) or "none"
    return (
        f"export ({stats['format']}): {stats['in']} final samples -> {stats['kept']} rows in "
        f"{stats['shards']} files -> {output}; dropped: {dropped}"
    )


if __name__ == "__main__":
    sys.exit(main())
