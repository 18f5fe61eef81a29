"""Spark job: extracted pairs -> candidates, by a recipe's caption and URL rules, then exact
deduplication.

    curate filter --input OUT/pairs --recipe laion --output OUT/candidates
    spark-submit --master spark://HOST:7077 jobs/filter.py -i ... --recipe FILE.yaml -o ...

Reads the extract stage's ``pairs/`` parquet, one Spark task per file. Writes ``OUTPUT/pairs/``
(the candidates: the input columns plus language, language_score, caption_original and recipe;
schema in ``schemas/filter.py``), ``OUTPUT/stats.json`` and, with ``--dropped``,
``OUTPUT/dropped/`` with every dropped row and its reason. Each row is dropped for the first
rule, in recipe order, that rejects it; deduplication by uid, then by URL, runs last over the
rows every rule kept, keeping the first row in input order (warc_path, warc_offset, position).
A rerun skips the files done before (``_done/``) and redoes the deduplication; another recipe
rebuilds OUTPUT.
"""

import argparse
import sys
from functools import partial

from vlcurate.jobs import spark as spark_util
from vlcurate.jobs.balance import balance as metaclip_balance
from vlcurate.jobs.parquet import read_parquet, write_parquet
from vlcurate.jobs.spark import SparkExecutor
from vlcurate.pipeline import storage
from vlcurate.pipeline.filters.apply import ANNOTATED_SCHEMA
from vlcurate.pipeline.filters.dedup import Dedup, mark_duplicates
from vlcurate.pipeline.filters.metaclip import find_balance
from vlcurate.pipeline.filters.stage import DROPPED, PAIRS, FilterStage, format_summary, pairs_files
from vlcurate.pipeline.recipe import Recipe, RecipeError, bundled_recipes, load_recipe
from vlcurate.pipeline.stage import OutputError, run_stage


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="filter", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--input", "-i", required=True, help="the extract stage's pairs/ (or its OUTPUT folder)")
    add("--recipe", "-r", required=True, help=f"{', '.join(bundled_recipes())} or a YAML file")
    add("--output", "-o", required=True, help="gets pairs/ (candidates), stats.json, dropped/")
    add("--dropped", action="store_true", help="also write dropped rows to OUTPUT/dropped/")
    add("--master", help="Spark master URL; default: whatever spark-submit set, else local[*]")
    add("--partitions", type=int, help="output files in pairs/ (default: Spark's choice)")
    add("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def spark_dedup(annotated, dedup: Dedup, output, master=None, dropped=False, partitions=None, **kw):
    """The corpus-wide pass: duplicates marked over every annotated file, then MetaCLIP's draw
    if ``kw["balance"]`` is a rule; ``pairs/`` (and ``dropped/``) written; (rows per reason,
    the draw's facts)."""
    from pyspark import StorageLevel

    spark = spark_util.session("curate-filter", master)
    rows = read_parquet(spark, annotated, ANNOTATED_SCHEMA)  # s3:// too (jobs/parquet.py)
    rows = mark_duplicates(rows, dedup).persist(StorageLevel.MEMORY_AND_DISK)
    persisted, facts, rule = [rows], {}, kw.get("balance")
    try:
        if rule is not None:  # facts: its t and count histograms, for stats.json
            rows, facts["metaclip_balance"] = metaclip_balance(spark, rows, rule, persisted)
        counts = {
            r["drop_reason"]: r["count"] for r in rows.groupBy("drop_reason").count().collect()
        }
        kept = rows.filter(rows.drop_reason.isNull()).drop("drop_reason")
        kept = kept.repartition(partitions) if partitions else kept
        write_parquet(kept, storage.join(output, PAIRS))
        storage.remove_tree(storage.join(output, DROPPED))
        if dropped:
            write_parquet(rows.filter(rows.drop_reason.isNotNull()), storage.join(output, DROPPED))
    finally:
        for frame in persisted:
            frame.unpersist()
    return counts, facts


def run(
    input_url: str,
    recipe: Recipe,
    output: str,
    master: str | None = None,
    write_dropped: bool = False,
    partitions: int | None = None,
    progress: bool = True,
) -> dict:
    """Filter ``input_url`` into ``output``; returns the stats (also in stats.json)."""
    output = storage.absolute(output)
    dedup = partial(spark_dedup, master=master, dropped=write_dropped, partitions=partitions)
    dedup = partial(dedup, balance=find_balance(recipe.filters))
    inputs = pairs_files(storage.absolute(input_url))
    stage = FilterStage(inputs, output, recipe.rules, recipe.dedup, dedup, recipe.source)
    return run_stage(stage, SparkExecutor(master, progress=progress))


def main(argv: list[str] | None = None, default_master: str | None = None) -> int:
    args = build_parser().parse_args(argv)
    master, progress = args.master or default_master, not args.no_progress
    if args.partitions is not None and args.partitions < 1:
        print(f"error: --partitions: {args.partitions} is not allowed (>= 1)", file=sys.stderr)
        return 2
    try:
        recipe = load_recipe(args.recipe)
        stats = run(
            args.input, recipe, args.output, master, args.dropped, args.partitions, progress
        )
    except (RecipeError, storage.InputError, OutputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_summary(stats, args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
