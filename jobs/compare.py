"""Compare filtering recipes the way DataComp does (``curate compare``): select the same scored
pool with each recipe, train the same CLIP with the same budget (samples seen) on each
selection, evaluate each on the same held-out shards, and write a side-by-side table and plot.

    curate compare demo recipes/demo-nofilter.yaml --shards out/demo/shards \\
        --scores out/demo/scores --eval-shards 'out/scenes-heldout/00000.tar' \\
        --label-field kind --samples 4000 --output out/compare

    curate compare pool-nofilter.yaml pool-clip.yaml ... --seeds 3 --label-field kind color \
        --truth-field noise ...       # mean ± sd over 3 seeds; each selection's make-up

Writes OUTPUT/NAME/final (each selection), OUTPUT/NAME/train (each run; train-seedS with
--seeds), OUTPUT/compare.json, compare.md, compare.png and report.html. A recipe that keeps
fewer samples than the budget is resampled (each sample seen more than once), and the table
says so. Held-out mini-web scenes for --eval-shards: ``curate miniweb --scenes 500 --seed 2``;
a noisy pool with truth to compare on: ``curate miniweb --pool 6000`` (benchmarks/curation.py).
"""

import argparse
import sys

from vlcurate.jobs.options import add_config_flags, config_from_args
from vlcurate.pipeline.recipe import RecipeError
from vlcurate.pipeline.score.clip import WeightsError
from vlcurate.pipeline.storage import InputError
from vlcurate.pipeline.train.compare import CompareConfig, compare, table


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="compare", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "recipes",
        nargs="+",
        metavar="RECIPE",
        help="two or more recipes: bundled names or YAML paths",
    )
    parser.add_argument("--shards", required=True, help="folder of the downloaded shards")
    parser.add_argument("--scores", required=True, help="folder `curate score` wrote for them")
    parser.add_argument("--output", "-o", required=True, help="folder for selections and runs")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    add_config_flags(parser, CompareConfig)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if len(args.recipes) < 2:
        print("error: give at least two recipes to compare", file=sys.stderr)
        return 2
    config = config_from_args(CompareConfig, args)
    try:
        result = compare(
            args.recipes,
            args.shards,
            args.scores,
            args.output,
            config,
            progress=not args.no_progress,
        )
    except (RecipeError, InputError, WeightsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(table(result))
    print(f"compare: {args.output}/compare.md, compare.json, compare.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
