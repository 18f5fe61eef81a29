"""Interleaved documents (mmc4 / OBELICS style): ``curate docs filter | images | assign``.

    curate docs filter --input OUT/extract --recipe mmc4 --output OUT/docs
    curate docs images --input OUT/docs --output OUT/doc-images.parquet
    curate download --input OUT/doc-images.parquet --output OUT/doc-shards --recipe mmc4
    curate score --input OUT/doc-shards --output OUT/doc-scores --model tiny-clip \
        --pretrained miniweb
    curate docs assign --docs OUT/docs --shards OUT/doc-shards --scores OUT/doc-scores \
        --recipe mmc4 --output OUT/interleaved
    spark-submit --master spark://HOST:7077 jobs/docs.py filter -i s3://b/extract -r obelics -o ...

``images`` lists every image node of the filtered documents as download candidates that carry
``doc_id`` and ``image_index``; the pair stages download and score them. ``assign`` applies the
recipe's ``assign:`` section per document (downloaded, shorter side, aspect ratio, NSFW), assigns
images to sentences as mmc4 does (bipartite matching on CLIP similarity, from the score stage's
image embeddings; best similarity >= 0.15), drops in-document pHash duplicates, documents with no
image left, with faces (``faces: drop_doc``, mmc4-ff) or outside mmc4-core (``core: true``), and
writes OUTPUT/NNNNN.tar: one sample per document, mmc4's json (``text_list``, ``image_info``,
``similarity_matrix``, ``could_have_url_duplicate``, provenance) and its images ``0.jpg``,
``1.jpg``... in order (``vlcurate.pipeline.docs.shards.InterleavedDataset`` reads them back as text
with ``<image>`` placeholders and image tensors), and OUTPUT/stats.json.

The filter step:
Reads the extract stage's ``docs/`` parquet (each page's text and image nodes in order) and
applies the recipe's ``docs:`` section (pipeline/docs/filters.py): text nodes outside OBELICS's
word, repetition, special-character, stopword and flagged-word bounds are removed; image nodes
that are not png/jpg, whose URL names a logo/button/icon/plugin/widget, or whose URL appears more
than ``max_url_count`` times in the whole corpus are removed; then documents outside the
word, repetition, special-character, stopword, language-confidence and image-count bounds are
dropped. The URL count is a Spark aggregation over every document (explode the image nodes,
group by URL); only the URLs over the limit come back to the driver, and they are broadcast.

Writes ``OUTPUT/docs/NAME.parquet`` per input file (same schema; one Spark task per file),
``OUTPUT/_stats/NAME.json`` when a file is done (a rerun skips it) and ``OUTPUT/stats.json``:
documents in == kept + dropped by reason, and the same identity for text and image nodes.
"""

import argparse
import sys

from vlcurate.jobs import spark as spark_util
from vlcurate.pipeline import storage
from vlcurate.pipeline.docs.filters import DocFilterConfig
from vlcurate.pipeline.docs.stage import filter_file, merge_stats
from vlcurate.pipeline.recipe import RecipeError, bundled_recipes, load_recipe
from vlcurate.pipeline.score.clip import WeightsError
from vlcurate.schemas.extract import DOC_SCHEMA
from vlcurate.schemas.spark import to_spark


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="docs", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="step", required=True, metavar="STEP")
    filt = sub.add_parser(
        "filter",
        help="node, document and image-URL rules (OBELICS, mmc4)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    filt.add_argument(
        "--input",
        "-i",
        required=True,
        help="the extract stage's output folder (or its docs/ folder)",
    )
    filt.add_argument(
        "--recipe",
        "-r",
        required=True,
        help=f"a recipe with a docs: section ({', '.join(bundled_recipes())}) or a YAML file",
    )
    filt.add_argument("--output", "-o", required=True, help="output folder")
    filt.add_argument(
        "--master", default=None, help="Spark master; default: what spark-submit set, else local[*]"
    )
    filt.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    images = sub.add_parser(
        "images",
        help="the filtered documents' images as download input",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    images.add_argument("--input", "-i", required=True, help="`curate docs filter`'s output")
    images.add_argument("--output", "-o", required=True, help="a .parquet file to write")

    assign = sub.add_parser(
        "assign",
        help="images to sentences (mmc4), interleaved shards",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    assign.add_argument("--docs", required=True, help="`curate docs filter`'s output")
    assign.add_argument("--shards", required=True, help="the images, as `curate download` wrote")
    assign.add_argument("--scores", required=True, help="their scores, as `curate score` wrote")
    assign.add_argument("--recipe", "-r", required=True, help="a recipe with an assign: section")
    assign.add_argument("--output", "-o", required=True, help="folder for the interleaved shards")
    assign.add_argument("--docs-per-shard", type=int, default=100, help="(default: 100)")
    assign.add_argument("--device", default="cpu", help="where sentences are encoded (cpu, cuda)")
    assign.add_argument(
        "--report", default="", help="where report.html goes (default: OUTPUT/report.html)"
    )
    assign.add_argument(
        "--no-report", dest="report", action="store_const", const=None, help="skip report.html"
    )
    return parser


def read_docs(folder: str) -> list[dict]:
    import pyarrow.parquet as pq

    base = storage.absolute(folder)
    inner = storage.join(base, "docs")
    return pq.read_table(inner if storage.exists(inner) else base).to_pylist()


def funnel_of(docs: str, shards: str, scores: str) -> list[tuple[str, dict]]:
    """The earlier stages' stats.json: extract (beside the docs folder, as `curate run` lays
    it out), docs filter, download and score."""
    import json
    import os

    base = storage.absolute(docs)
    stages = [
        (
            "extract",
            os.path.join(os.path.dirname(base.rstrip("/")), "extract"),
            "WARC response record",
        ),
        ("docs filter", base, "document"),
        ("download", shards, "image URL"),
        ("score", scores, "downloaded image"),
    ]
    found = []
    for name, folder, unit in stages:
        path = os.path.join(folder, "stats.json")
        if os.path.exists(path):
            with open(path) as f:
                found.append((name, {**json.load(f), "unit": unit}))
    return found


def run_images(args) -> int:
    import pyarrow.parquet as pq

    from vlcurate.pipeline.docs.interleave import image_table

    table = image_table(read_docs(args.input))
    with storage.atomic_open(storage.absolute(args.output), "wb") as f:
        pq.write_table(table, f)
    docs = len(set(table.column("doc_id").to_pylist()))
    print(f"docs images: {table.num_rows} image URLs of {docs} documents -> {args.output}")
    return 0


def run_assign(args, recipe) -> int:
    from vlcurate.pipeline.docs import interleave
    from vlcurate.pipeline.score.clip import ClipScorer
    from vlcurate.pipeline.select.inputs import score_settings, shard_names

    config = recipe.assign
    shards, scores = storage.absolute(args.shards), storage.absolute(args.scores)
    settings = score_settings(scores, shard_names(shards))
    scorer = ClipScorer(
        model=settings["model"], pretrained=settings["pretrained"], device=args.device
    )
    docs = read_docs(args.docs)
    images = interleave.load_images(shards, scores)
    kept, stats, image_rows = interleave.assign_documents(docs, images, scorer, config)
    output = storage.absolute(args.output)
    paths = interleave.write_interleaved(kept, images, output, args.docs_per_shard)
    model = {k: settings[k] for k in ("model", "pretrained")}
    result = interleave.write_stats(output, stats, recipe=recipe.ident, shards=len(paths), **model)
    if args.report is not None:
        from vlcurate.pipeline.docs.report import write_docs_report

        report = args.report or storage.join(output, "report.html")
        funnel = funnel_of(args.docs, shards, scores) + [("assign", {**result, "unit": "document"})]
        write_docs_report(
            report,
            image_rows=image_rows,
            images=images,
            settings=settings,
            config=config,
            recipe=recipe,
            funnel=funnel,
        )
        print(f"  report: {report}")
    t = result["images"]
    print(
        f"docs assign ({recipe.ident}): {result['in']} documents in -> {result['kept']} kept "
        f"in {len(paths)} shards -> {args.output}"
    )
    print("  documents dropped: " + ", ".join(f"{r} {n}" for r, n in result["dropped"].items()))
    print(
        f"  images: {t['in']} in -> {t['kept']} kept; dropped "
        + ", ".join(f"{r} {n}" for r, n in sorted(t["dropped"].items()))
    )
    return 0


def docs_files(input_url: str) -> list[str]:
    import fsspec

    base = storage.absolute(input_url)
    folder = storage.join(base, "docs") if storage.exists(storage.join(base, "docs")) else base
    fs, path = fsspec.core.url_to_fs(folder)
    found = sorted(fs.glob(path.rstrip("/") + "/*.parquet"))
    local = fs.protocol in ("file", ("file", "local"))
    return [p if local else fs.unstrip_protocol(p) for p in found]


def frequent_image_urls(spark, files: list[str], max_count: int) -> list[str]:
    """Image URLs seen more than ``max_count`` times across every document."""
    from pyspark.sql import functions as F

    docs = spark.read.schema(to_spark(DOC_SCHEMA)).parquet(*files)
    nodes = docs.select(F.explode("nodes").alias("node")).where(F.col("node.type") == "image")
    counts = nodes.groupBy(F.col("node.url").alias("url")).count()
    return [row["url"] for row in counts.where(F.col("count") > max_count).collect()]


def run_filter(
    input_url: str, recipe, output: str, master: str | None = None, progress: bool = True
) -> dict:
    config: DocFilterConfig = recipe.docs
    output = storage.absolute(output)
    files = docs_files(input_url)
    if not files:
        raise storage.InputError(f"no docs parquet files in {input_url}")
    spark = spark_util.session("curate-docs-filter", master)
    frequent = frequent_image_urls(spark, files, config.max_url_count)
    banned = spark.sparkContext.broadcast(frozenset(frequent))
    rdd = spark.sparkContext.parallelize(files, len(files))
    with spark_util.progress(spark, len(files), "docs filter", unit="file", enabled=progress):
        parts = rdd.map(lambda path: filter_file(path, output, config, banned.value)).collect()
    stats = merge_stats(parts, recipe=recipe.ident, frequent_image_urls=len(frequent))
    storage.write_text_atomic(storage.join(output, "stats.json"), _json(stats))
    return stats


def _json(stats: dict) -> str:
    import json

    return json.dumps(stats, indent=2) + "\n"


def format_summary(stats: dict, output: str) -> str:
    lines = [
        f"docs filter ({stats['recipe']}): {stats['in']} documents in -> {stats['kept']} "
        f"kept -> {output}/docs"
    ]
    lines += [f"  {r:<28} {n:>9}" for r, n in sorted(stats["dropped"].items(), key=lambda x: -x[1])]
    for tally in ("text_nodes", "image_nodes"):
        t = stats[tally]
        lines.append(
            f"  {tally}: {t['in']} in -> {t['kept']} kept; dropped "
            + ", ".join(f"{r} {n}" for r, n in sorted(t["dropped"].items()))
        )
    lines.append(
        f"  image URLs seen more than the limit in the corpus: {stats['frequent_image_urls']}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None, default_master: str | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.step == "images":
        return run_images(args)
    try:
        recipe = load_recipe(args.recipe)
    except RecipeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.step == "assign":
        if recipe.assign is None:
            print(
                f"error: recipe {recipe.ident} has no assign: section (try mmc4)", file=sys.stderr
            )
            return 2
        try:
            return run_assign(args, recipe)
        except (storage.InputError, WeightsError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    if recipe.docs is None:
        print(
            f"error: recipe {recipe.ident} has no docs: section (try mmc4 or obelics)",
            file=sys.stderr,
        )
        return 2
    try:
        stats = run_filter(
            args.input,
            recipe,
            args.output,
            args.master or default_master,
            progress=not args.no_progress,
        )
    except storage.InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_summary(stats, args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
