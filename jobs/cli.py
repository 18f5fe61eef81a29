"""``curate``: the command line over every stage. Each subcommand runs the same code as its
Spark job in ``jobs/``, embedded in Spark local mode (``local[*]``) unless ``--master`` says
otherwise."""

import argparse
import sys
from functools import partial

from vlcurate.jobs import compare as compare_job
from vlcurate.jobs import demo, docs, download, evaluate, extract, miniweb, run, score
from vlcurate.jobs import filter as filter_job
from vlcurate.jobs import selection as select_job
from vlcurate.jobs import train as train_job

# name, module (with build_parser and main), one-line help, main as the command runs it
COMMANDS = [
    (
        "extract",
        extract,
        "WARC files -> image-text pairs and interleaved documents",
        partial(extract.main, default_master="local[*]"),
    ),
    (
        "filter",
        filter_job,
        "pairs -> candidates: a recipe's caption, URL and language rules, dedup",
        partial(filter_job.main, default_master="local[*]"),
    ),
    (
        "download",
        download,
        "candidates -> WebDataset shards via img2dataset, unsafe URLs dropped",
        download.main,
    ),
    (
        "score",
        score,
        "shards -> CLIP scores and embeddings, NSFW, watermark, faces, pHash",
        partial(score.main, default_master="local[*]"),
    ),
    (
        "select",
        select_job,
        "shards + scores -> final shards: recipe thresholds, dedup, report",
        partial(select_job.main, default_master="local[*]"),
    ),
    (
        "run",
        run,
        "the whole road: extract -> filter -> download -> score -> select, resumable",
        run.main,
    ),
    (
        "docs",
        docs,
        "interleaved documents: OBELICS / mmc4 node, document and image-URL filters",
        partial(docs.main, default_master="local[*]"),
    ),
    (
        "train",
        train_job,
        "train a CLIP (DDP under torchrun) or a Frozen-style model on shards",
        train_job.main,
    ),
    (
        "eval",
        evaluate,
        "CLIP retrieval and zero-shot; few-shot ICL episodes (Frozen protocol)",
        evaluate.main,
    ),
    (
        "compare",
        compare_job,
        "recipes side by side: select, train a CLIP on each, evaluate",
        compare_job.main,
    ),
    (
        "miniweb",
        miniweb,
        "build (and serve on 127.0.0.1) a synthetic crawl with known truth",
        miniweb.main,
    ),
    (
        "demo",
        demo,
        "the pipeline on bundled data, offline: real WARCs, then the mini web to shards",
        demo.main,
    ),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="curate", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module, help_text, _ in COMMANDS:
        p = sub.add_parser(
            name,
            help=help_text,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.build_parser(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)  # validates, and answers --help
    run = {name: run for name, _, _, run in COMMANDS}[args.command]
    return run(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
