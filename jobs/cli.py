"""``curate``: the command line over every stage. Each subcommand runs the same code as its
Spark job in ``jobs/``, embedded in Spark local mode (``local[*]``) unless ``--master`` says
otherwise."""

import argparse
import sys
from pathlib import Path

from jobs import download, extract, miniweb
from jobs import filter as filter_job

BUNDLED_WARCS = Path(__file__).resolve().parent.parent / "tests" / "data" / "warc"


def _demo(args: argparse.Namespace) -> int:
    warcs = sorted(str(p) for p in BUNDLED_WARCS.glob("*.warc*"))
    if not warcs:
        print(f"error: no bundled WARC files in {BUNDLED_WARCS}", file=sys.stderr)
        return 2
    print(f"demo: extracting {len(warcs)} bundled Common Crawl WARC files from {BUNDLED_WARCS}")
    flags = ["--no-progress"] if args.no_progress else []
    out = Path(args.output)
    code = extract.main(["--input", *warcs, "--output", str(out / "extract"), *flags], args.master)
    if code != 0:
        return code
    print(_samples(out / "extract"))
    for recipe in args.recipes:
        print(f"\ndemo: filtering the pairs with the {recipe} recipe")
        code = filter_job.main(
            [
                "--input",
                str(out / "extract"),
                "--recipe",
                recipe,
                "--output",
                str(out / f"filter-{recipe}"),
            ],
            args.master,
        )
        if code != 0:
            return code
    return 0


def _samples(output: Path, n: int = 5) -> str:
    """A few extracted pairs and the start of one document, to see what the job produced."""
    import pyarrow.parquet as pq

    pairs = pq.read_table(output / "pairs", columns=["caption", "url"]).to_pylist()
    docs = pq.read_table(output / "docs", columns=["page_url", "nodes"]).to_pylist()
    lines = [f"\nsample pairs ({len(pairs)} in {output / 'pairs'}):"]
    step = max(1, len(pairs) // n)
    lines += [f"  {p['caption'][:50]!r:54} {p['url'][:70]}" for p in pairs[::step][:n]]
    doc = max(docs, key=lambda d: sum(node["type"] == "image" for node in d["nodes"]))
    lines.append(f"sample document ({doc['page_url']}, first nodes of {len(doc['nodes'])}):")
    for node in doc["nodes"][:8]:
        shown = node["text"] if node["type"] == "text" else f"<image {node['url']}>"
        lines.append(f"  [{node['type']}] {shown[:90]}")
    return "\n".join(lines)


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
        help="run the pipeline on the bundled WARC files, offline",
        description="Runs extract on the WARC files bundled in tests/data/warc, then filter with "
        "each recipe, and prints what every stage kept and dropped.",
    )
    p.add_argument(
        "--recipes",
        nargs="*",
        default=["laion", "datacomp-basic", "cc3m"],
        help="filter recipes to run (default: laion datacomp-basic cc3m)",
    )
    p.add_argument(
        "--output", "-o", default="build/demo", help="output folder (default: build/demo)"
    )
    p.add_argument("--master", default="local[*]", help="Spark master URL (default: local[*])")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
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
        return _demo(args)
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
