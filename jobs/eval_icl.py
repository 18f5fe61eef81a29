"""``curate eval icl``: few-shot episodes after Frozen's protocol (support images named with
nonsense or real words, then a query to name), run through in-context learners; prints the
Frozen-style table. Flags, then one library call (:mod:`vlcurate.pipeline.icl.run`)."""

import argparse
import sys

from vlcurate.jobs.options import add_config_flags, config_from_args
from vlcurate.pipeline.icl.run import EpisodeSource, GridConfig, ModelsConfig


def add_parser(sub) -> None:
    i = sub.add_parser(
        "icl",
        help="few-shot in-context learning: Frozen-style episodes",
        description="Few-shot episodes after Frozen's protocol (support images "
        "named with nonsense or real words, then a query to name), run through "
        "in-context learners; prints the Frozen-style table.",
    )
    source = i.add_mutually_exclusive_group(required=True)
    source.add_argument("--shards", help="shard brace pattern (quote it); needs --label-field")
    source.add_argument("--folder", help="folder with one subfolder of images per class")
    source.add_argument(
        "--frozen-tasks",
        metavar="FOLDER",
        help="Frozen's released tasks (open_ended_mi, real_name_mi, fast_vqa "
        "files and their *_all_questions.json), evaluated as released; the grid "
        "flags are then ignored",
    )
    source.add_argument(
        "--episodes",
        metavar="FILE.jsonl",
        help="reuse saved episodes (an earlier run's episodes.jsonl); the grid "
        "flags are then ignored",
    )
    i.add_argument("--label-field", help="with --shards: the .json field holding the class")
    add_config_flags(i, GridConfig)
    add_config_flags(i, ModelsConfig)
    i.add_argument(
        "--output",
        "-o",
        help="folder for icl.md, icl.json and episodes.jsonl (and predictions.jsonl)",
    )
    i.add_argument(
        "--predictions",
        action="store_true",
        help="also write every prediction to predictions.jsonl (needs --output)",
    )
    i.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def main(args: argparse.Namespace) -> int:
    from vlcurate.pipeline.icl import evaluate as icl_eval
    from vlcurate.pipeline.icl.lm import LanguageModelError
    from vlcurate.pipeline.icl.run import run_icl, write_run
    from vlcurate.pipeline.score.clip import WeightsError

    source = config_from_args(EpisodeSource, args)
    grid, models = config_from_args(GridConfig, args), config_from_args(ModelsConfig, args)
    try:
        results, sets = run_icl(source, grid, models, args.predictions, not args.no_progress)
    except (WeightsError, LanguageModelError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for note in results["notes"]:
        print(f"note: {note}")
    print(icl_eval.frozen_table(results))
    print(icl_eval.speed_line(results))
    if args.output:
        for kind, path in write_run(results, sets, args.output, args.predictions).items():
            print(f"  {kind}: {path}")
    return 0
