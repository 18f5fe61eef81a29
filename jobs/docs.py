"""Interleaved documents (mmc4 / OBELICS style): ``curate docs filter | images | assign``.

    curate docs filter --input OUT/extract --recipe mmc4 --output OUT/docs
    curate download --input OUT/docs/images.parquet --output OUT/doc-shards --recipe mmc4
    curate score --input OUT/doc-shards --output OUT/doc-scores --model tiny-clip --pretrained X
    curate docs assign --docs OUT/docs --shards OUT/doc-shards --scores OUT/doc-scores \
        --recipe mmc4 --output OUT/interleaved
    spark-submit --master spark://HOST:7077 jobs/docs.py filter -i s3://b/extract -r obelics -o ...

``filter``: one Spark task per docs file, after a Spark count of image URLs over the corpus;
then ``OUTPUT/images.parquet``, the kept documents' image list (``images`` writes it for any
docs folder). ``assign`` runs here (``pipeline/docs/filter_stage.py``, ``assign_stage.py``).
"""

import argparse
import sys
from functools import partial

from vlcurate.jobs import spark as spark_util
from vlcurate.jobs.options import add_config_flags, config_from_args
from vlcurate.jobs.parquet import read_parquet
from vlcurate.pipeline import storage
from vlcurate.pipeline.config import ConfigError
from vlcurate.pipeline.docs import assign_stage, filter_stage
from vlcurate.pipeline.docs.config import ShardConfig
from vlcurate.pipeline.recipe import RecipeError, bundled_recipes, load_recipe
from vlcurate.pipeline.score.clip import WeightsError
from vlcurate.pipeline.stage import OutputError, SettingsMismatch, run_stage
from vlcurate.schemas.extract import DOC_SCHEMA

REFUSALS = (ConfigError, RecipeError, storage.InputError, OutputError, SettingsMismatch)  # rc 2


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = parser or argparse.ArgumentParser(
        prog="docs", description=__doc__, formatter_class=raw
    )
    sub = parser.add_subparsers(dest="step", required=True, metavar="STEP")
    recipes = f"a recipe ({', '.join(bundled_recipes())}) or a YAML file"
    filt = sub.add_parser(
        "filter", help="node, document and image-URL rules (OBELICS, mmc4)", formatter_class=raw
    )
    filt.description = filter_stage.__doc__
    filt.add_argument("--input", "-i", required=True, help="the extract stage's output (or docs/)")
    filt.add_argument("--recipe", "-r", required=True, help=f"with a docs: section: {recipes}")
    filt.add_argument("--output", "-o", required=True, help="output folder")
    filt.add_argument("--master", default=None, help="Spark master; default: spark-submit's")
    filt.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    images = sub.add_parser("images", help="the filtered documents' images as download input")
    images.add_argument("--input", "-i", required=True, help="`curate docs filter`'s output")
    images.add_argument("--output", "-o", required=True, help="a .parquet file to write")
    assign = sub.add_parser(
        "assign", help="images to sentences (mmc4), interleaved shards", formatter_class=raw
    )
    assign.description = assign_stage.__doc__
    assign.add_argument("--docs", required=True, help="`curate docs filter`'s output")
    assign.add_argument("--shards", required=True, help="the images, as `curate download` wrote")
    assign.add_argument("--scores", required=True, help="their scores, as `curate score` wrote")
    assign.add_argument("--recipe", "-r", required=True, help=f"with an assign: section: {recipes}")
    assign.add_argument("--output", "-o", required=True, help="folder for the interleaved shards")
    assign.add_argument("--device", default="cpu", help="where sentences are encoded (cpu, cuda)")
    assign.add_argument("--report", default="", help="report.html (default: OUTPUT/report.html)")
    assign.add_argument("--no-report", dest="report", action="store_const", const=None)
    assign.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_config_flags(assign, ShardConfig)
    return parser


def frequent_image_urls(files: list[str], max_count: int, master: str | None = None) -> list[str]:
    """Image URLs seen more than ``max_count`` times across every document (Spark: explode the
    image nodes, group by URL); only those come back to the driver."""
    from pyspark.sql import functions as F

    spark = spark_util.session("curate-docs-filter", master)
    docs = read_parquet(spark, files, DOC_SCHEMA)
    nodes = docs.select(F.explode("nodes").alias("node")).where(F.col("node.type") == "image")
    counts = nodes.groupBy(F.col("node.url").alias("url")).count()
    return [row["url"] for row in counts.where(F.col("count") > max_count).collect()]


def filter_docs(extract: str, recipe, output: str, master=None, progress=True) -> dict:
    """``curate docs filter``: one Spark task per docs file; returns the stats."""
    if recipe.docs is None:
        raise RecipeError(f"recipe {recipe.ident} has no docs: section (try mmc4 or obelics)")
    count, output = partial(frequent_image_urls, master=master), storage.absolute(output)
    stage = filter_stage.DocsFilterStage(extract, output, recipe.docs, count, recipe.ident)
    return run_stage(stage, spark_util.SparkExecutor(master, progress=progress, app="curate-docs"))


image_list = filter_stage.write_image_list  # ``curate docs images``
assign_docs = assign_stage.run_assign  # ``curate docs assign`` on this machine


def run(args, master: str | None) -> str:
    """One step; returns the lines it prints."""
    if args.step == "images":
        return image_list(args.input, args.output)
    recipe, progress = load_recipe(args.recipe), not args.no_progress
    if args.step == "filter":
        stats = filter_docs(args.input, recipe, args.output, master, progress)
        return filter_stage.describe(stats, args.output)
    sharding = config_from_args(ShardConfig, args)
    folders = (args.docs, args.shards, args.scores, args.output)
    stats = assign_docs(*folders, recipe, args.device, args.report, progress, sharding)
    return assign_stage.describe(stats, args.output)


def main(argv: list[str] | None = None, default_master: str | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        print(run(args, getattr(args, "master", None) or default_master))
    except (*REFUSALS, WeightsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
