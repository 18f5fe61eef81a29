"""MetaCLIP metadata: build the offline entry list that ``metaclip_balance: {metadata: builtin}``
uses, in MetaCLIP's released format (``metadata.json``, a JSON list of strings).

    curate metadata build --output metadata.json
    curate metadata build --output metadata.json --min-zipf 2.0

The entries are every WordNet 3.0 lemma name (Debian's wordnet-base) and the English words of
wordfreq's large list down to a Zipf frequency: a stand-in for MetaCLIP's Wikipedia unigram and
bigram counts and article titles, which need the network (see
``pipeline/filters/metaclip_metadata.py`` for the differences).
"""

import argparse
import sys

from vlcurate.pipeline.filters.metaclip_metadata import (
    DEFAULT_MIN_ZIPF,
    build_metadata,
    write_metadata,
)
from vlcurate.pipeline.filters.wordnet import DEBIAN_WORDNET


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="metadata", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    build = sub.add_parser("build", help="write the builtin entry list (WordNet + wordfreq)")
    build.add_argument("--output", "-o", required=True, help="the metadata.json to write")
    build.add_argument(
        "--min-zipf",
        type=float,
        default=DEFAULT_MIN_ZIPF,
        help=f"wordfreq words at least this frequent (Zipf scale; default {DEFAULT_MIN_ZIPF})",
    )
    build.add_argument("--wordnet", default=str(DEBIAN_WORDNET), help="WordNet 3.0 folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        entries = build_metadata(args.wordnet, args.min_zipf)
    except RuntimeError as e:  # WordNet missing
        print(f"error: {e}", file=sys.stderr)
        return 2
    write_metadata(entries, args.output)
    multi = sum(" " in e for e in entries)
    print(f"metadata: {len(entries):,} entries ({multi:,} of several words) -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
