"""``curate``: the command line over every stage. Each subcommand runs the same code as its
Spark job in ``jobs/``, embedded in Spark local mode (``local[*]``) unless ``--master`` says
otherwise."""

import argparse
import sys

from jobs import demo, download, extract, miniweb
from jobs import filter as filter_job


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="curate", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "extract",
        help="WARC files -> image-text pairs and interleaved documents",
        description=extract.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    extract.build_parser(p)

    p = sub.add_parser(
        "filter",
        help="pairs -> candidates: caption, URL and language rules of a recipe, exact dedup",
        description=filter_job.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    filter_job.build_parser(p)

    p = sub.add_parser(
        "download",
        help="candidates -> WebDataset shards with img2dataset, unsafe URLs dropped first",
        description=download.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    download.build_parser(p)

    p = sub.add_parser(
        "miniweb",
        help="build (and serve on 127.0.0.1) a synthetic crawl with known truth",
        description=miniweb.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    miniweb.build_parser(p)

    p = sub.add_parser(
        "demo",
        help="the pipeline on bundled data, offline: real WARCs, then the mini web to shards",
        description=demo.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.build_parser(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if args.command == "extract":
        return extract.main(argv[1:], default_master="local[*]")
    if args.command == "filter":
        return filter_job.main(argv[1:], default_master="local[*]")
    if args.command == "download":
        return download.main(argv[1:])
    if args.command == "miniweb":
        return miniweb.main(argv[1:])
    if args.command == "demo":
        return demo.main(argv[1:])
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
