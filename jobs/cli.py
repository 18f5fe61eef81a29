"""``curate``: the command line over every stage. Each subcommand runs the same code as its
Spark job in ``jobs/``, embedded in Spark local mode (``local[*]``) unless ``--master`` says
otherwise."""

import argparse
import sys

from vlcurate.jobs import compare as compare_job
from vlcurate.jobs import demo, docs, download, evaluate, extract, metadata, miniweb, run, score
from vlcurate.jobs import export as export_job
from vlcurate.jobs import filter as filter_job
from vlcurate.jobs import selection as select_job
from vlcurate.jobs import train as train_job

# name -> (module with build_parser and main, one-line help)
COMMANDS = {
    "extract": (extract, "WARC / WAT files -> image-text pairs and interleaved documents"),
    "filter": (
        filter_job,
        "pairs -> candidates: the recipe's text, URL and language rules, dedup",
    ),
    "download": (download, "candidates -> WebDataset shards via img2dataset, unsafe URLs dropped"),
    "score": (score, "shards -> CLIP scores and embeddings, NSFW, watermark, faces, pHash"),
    "select": (select_job, "shards + scores -> final shards: recipe thresholds, dedup, report"),
    "export": (export_job, "final shards -> a LAION-style release: URL/TEXT/score parquet"),
    "run": (run, "the whole road: extract -> filter -> download -> score -> select, resumable"),
    "docs": (docs, "interleaved documents: OBELICS / mmc4 node, document and image-URL filters"),
    "train": (train_job, "train a CLIP (DDP under torchrun) or a Frozen-style model on shards"),
    "eval": (evaluate, "CLIP retrieval and zero-shot; few-shot ICL episodes (Frozen protocol)"),
    "compare": (compare_job, "recipes side by side: select, train a CLIP on each, evaluate"),
    "metadata": (metadata, "MetaCLIP metadata: build the offline entry list (WordNet + wordfreq)"),
    "miniweb": (miniweb, "build (and serve on 127.0.0.1) a synthetic crawl with known truth"),
    "demo": (
        demo,
        "the pipeline on bundled data, offline: real WARCs, then the mini web",
    ),
}
# Spark jobs that curate runs embedded in local mode unless --master says otherwise
LOCAL_SPARK = {"extract", "filter", "score", "select", "docs"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="curate", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
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
    module = COMMANDS[args.command][0]
    if args.command in LOCAL_SPARK:
        return module.main(argv[1:], default_master="local[*]")
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
