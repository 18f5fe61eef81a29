"""Spark job: extracted pairs -> candidates, by a recipe's caption and URL rules, then exact
deduplication.

    curate filter --input OUT/pairs --recipe laion --output OUT/candidates
    spark-submit --master spark://HOST:7077 jobs/filter.py -i ... --recipe FILE.yaml -o ...

Reads the extract stage's ``pairs/`` parquet. Writes ``OUTPUT/pairs/`` (the candidates: the input
columns plus language, language_score, caption_original and recipe; schema in
``schemas/filter.py``), ``OUTPUT/stats.json`` and, with ``--dropped``, ``OUTPUT/dropped/`` with
every dropped row and its reason. Each row is dropped for the first rule, in recipe order, that
rejects it; deduplication by uid, then by URL, runs last over the rows every rule kept, keeping
the first row in input order (warc_path, warc_offset, position). A rerun starts again and
replaces OUTPUT.
"""

import argparse
import dataclasses
import json
import sys
from functools import partial

from vlcurate.jobs import spark as spark_util
from vlcurate.pipeline import storage
from vlcurate.pipeline.filters.apply import ANNOTATED_SCHEMA, annotate_batches
from vlcurate.pipeline.recipe import Recipe, RecipeError, bundled_recipes, load_recipe
from vlcurate.pipeline.stats import StageStats
from vlcurate.schemas.extract import PAIR_SCHEMA
from vlcurate.schemas.filter import DUPLICATE_UID, DUPLICATE_URL, SCHEMA_VERSION
from vlcurate.schemas.spark import to_spark

STAGE = "filter"
INPUT_ORDER = ("warc_path", "warc_offset", "position", "uid")


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="filter", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--input",
        "-i",
        required=True,
        help="the extract stage's pairs/ folder (or its OUTPUT folder)",
    )
    parser.add_argument(
        "--recipe",
        "-r",
        required=True,
        help=f"a bundled recipe ({', '.join(bundled_recipes())}) or a YAML file",
    )
    parser.add_argument(
        "--output",
        "-o",
        required=True,
        help="output folder; gets pairs/ (candidates), stats.json, dropped/",
    )
    parser.add_argument(
        "--dropped",
        action="store_true",
        help="also write every dropped row with its reason to OUTPUT/dropped/",
    )
    parser.add_argument(
        "--master",
        default=None,
        help="Spark master URL; default: whatever spark-submit set, else local[*]",
    )
    parser.add_argument(
        "--partitions",
        type=int,
        default=None,
        help="output files in pairs/ (default: as many as Spark's input splits)",
    )
    return parser


def _pairs_folder(url: str) -> str:
    inner = storage.join(url, "pairs")
    return inner if storage.exists(inner) else url


def dedup(df, recipe: Recipe):
    """Mark later copies among the kept rows: same uid, then more than max_per_url per URL.
    Spark's shuffle does it, so it holds for any input size; the order makes it deterministic."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = [F.col(c).asc_nulls_last() for c in INPUT_ORDER]
    kept = F.col("drop_reason").isNull()
    if recipe.dedup.uid:
        rank = F.row_number().over(Window.partitionBy("uid", kept).orderBy(*order))
        df = df.withColumn(
            "drop_reason",
            F.when(kept & (rank > 1), F.lit(DUPLICATE_UID)).otherwise(F.col("drop_reason")),
        )
    if recipe.dedup.max_per_url is not None:
        kept = F.col("drop_reason").isNull()
        rank = F.row_number().over(Window.partitionBy("url", kept).orderBy(*order))
        limit = recipe.dedup.max_per_url
        df = df.withColumn(
            "drop_reason",
            F.when(kept & (rank > limit), F.lit(DUPLICATE_URL)).otherwise(F.col("drop_reason")),
        )
    return df


def run(
    input_url: str,
    recipe: Recipe,
    output: str,
    master: str | None = None,
    write_dropped: bool = False,
    partitions: int | None = None,
) -> dict:
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    output = storage.absolute(output)
    spark = spark_util.session("curate-filter", master, console_progress=True)
    pairs = spark.read.schema(to_spark(PAIR_SCHEMA)).parquet(
        _pairs_folder(storage.absolute(input_url))
    )
    annotated = pairs.mapInArrow(
        partial(annotate_batches, recipe=recipe), to_spark(ANNOTATED_SCHEMA)
    )
    annotated = dedup(annotated, recipe).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        counts = {
            row["drop_reason"]: row["count"]
            for row in annotated.groupBy("drop_reason").count().collect()
        }
        kept = annotated.filter(F.col("drop_reason").isNull()).drop("drop_reason")
        if partitions:
            kept = kept.repartition(partitions)
        kept.write.mode("overwrite").parquet(storage.join(output, "pairs"))
        if write_dropped:
            annotated.filter(F.col("drop_reason").isNotNull()).write.mode("overwrite").parquet(
                storage.join(output, "dropped")
            )
    finally:
        annotated.unpersist()
    stats = StageStats(STAGE)
    stats.main.keep(counts.pop(None, 0))
    for reason, n in counts.items():
        stats.main.drop(reason, n)
    summary = stats.to_dict(
        schema_version=SCHEMA_VERSION,
        recipe=recipe.ident,
        recipe_source=recipe.source,
        rule_order=[f.name for f in recipe.filters] + ["dedup_uid", "dedup_url"],
        rules={f.name: dataclasses.asdict(f) for f in recipe.filters},
        dedup=dataclasses.asdict(recipe.dedup),
    )
    storage.write_text_atomic(
        storage.join(output, "stats.json"), json.dumps(summary, indent=2) + "\n"
    )
    return summary


def format_summary(stats: dict, output: str) -> str:
    lines = [
        f"filter ({stats['recipe']}): {stats['in']} pairs in -> {stats['kept']} candidates "
        f"({100 * stats['kept'] / max(stats['in'], 1):.1f}%) -> {output}",
    ]
    lines += [
        f"  {reason:<28} {n:>9}"
        for reason, n in sorted(stats["dropped"].items(), key=lambda kv: -kv[1])
    ]
    dropped = sum(stats["dropped"].values())
    lines.append(f"  accounting: in {stats['in']} == kept {stats['kept']} + dropped {dropped}")
    return "\n".join(lines)


def main(argv: list[str] | None = None, default_master: str | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        recipe = load_recipe(args.recipe)
    except RecipeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not storage.exists(args.input):
        print(f"error: input not found: {args.input}", file=sys.stderr)
        return 2
    stats = run(
        args.input,
        recipe,
        args.output,
        args.master or default_master,
        args.dropped,
        args.partitions,
    )
    print(format_summary(stats, args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
