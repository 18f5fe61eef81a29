"""Select the final dataset: a recipe's thresholds, near-duplicate removal, final shards, report.

    curate select --shards OUT/shards --scores OUT/scores --recipe laion --output OUT/final
    spark-submit jobs/selection.py --dedup-distributor pyspark --clusters 4096 ...

Writes to ``--output``: the final shards (``NNNNN.tar`` + ``NNNNN.parquet``, img2dataset's
layout, resharded to the recipe's ``samples_per_shard``; each sample's json carries every score
and its provenance), ``selection.parquet`` (every sample, its drop reason, what it duplicates),
``uids.npy`` (DataComp's sorted uid subset), ``manifest.json`` (recipe, models, counts per
reason, each shard's count and sha256), ``stats.json`` and ``report.html``. A killed run
resumes; a rerun with another recipe or other inputs rebuilds the whole output.

Semantic deduplication runs in memory here (faiss), or with ``--dedup-distributor pyspark`` one
Spark task per k-means cluster (:mod:`vlcurate.pipeline.select.clusters`).
"""

import argparse
import sys

from vlcurate.pipeline import storage
from vlcurate.pipeline.config import ConfigError
from vlcurate.pipeline.recipe import RecipeError, load_recipe
from vlcurate.pipeline.select import clusters as by_cluster
from vlcurate.pipeline.select.report import funnel_of
from vlcurate.pipeline.select.stage import select
from vlcurate.pipeline.stage import OutputError

DISTRIBUTORS = ("local", "pyspark")


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="select", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--shards", required=True, help="folder of the downloaded NNNNN.tar shards")
    add("--scores", required=True, help="folder `curate score` wrote")
    add(
        "--recipe",
        required=True,
        help="bundled recipe name (laion, datacomp-basic, cc3m, demo) or YAML file; its "
        "select: section holds the thresholds",
    )
    add("--output", "-o", required=True, help="folder for the final shards")
    add(
        "--dedup-distributor",
        choices=DISTRIBUTORS,
        default="local",
        help="local: semantic dedup in memory here; pyspark: per IVF cluster, one Spark task "
        "each (default: local)",
    )
    add("--clusters", type=int, default=None, help="k-means clusters for pyspark (about n/5000)")
    add("--master", default=None, help="Spark master for pyspark (default: spark-submit's)")
    add("--report", default="", help="where report.html goes (default: OUTPUT/report.html)")
    add("--no-report", action="store_true", help="skip report.html")
    add("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def spark_semantic(master: str | None, clusters: int | None):
    """Semantic dedup as one Spark task per k-means cluster of the embeddings."""

    def run(rows, rank, d, scores):
        from vlcurate.jobs import spark as spark_util

        plan = by_cluster.plan_clusters(rows, rank, scores, clusters)
        cosine, neighbors = d.semantic_min_cosine, d.neighbors
        sc = spark_util.session("curate-select", master).sparkContext
        centres = sc.broadcast(plan.centroids)
        pairs = (
            sc.parallelize(plan.members, max(1, len(plan.members)))
            .flatMap(lambda item: by_cluster.assign_clusters(item, scores, centres.value))
            .groupByKey(numPartitions=plan.clusters)
            .flatMap(lambda item: by_cluster.duplicates_within(item, cosine, neighbors))
            .collect()
        )
        return by_cluster.duplicate_of(plan.size, pairs)

    return run


def main(argv: list[str] | None = None, default_master: str | None = None) -> int:
    args = build_parser().parse_args(argv)
    report = None if args.no_report else args.report or storage.join(args.output, "report.html")
    try:
        if args.clusters is not None and args.clusters < 1:
            raise ConfigError(f"--clusters: {args.clusters} is not allowed (an integer >= 1)")
        recipe = load_recipe(args.recipe)
        pyspark = args.dedup_distributor == "pyspark"
        semantic = spark_semantic(args.master or default_master, args.clusters) if pyspark else None
        stats = select(
            args.shards,
            args.scores,
            recipe,
            args.output,
            funnel=funnel_of(args.shards),
            semantic=semantic,
            progress=not args.no_progress,
            report=report,
        )
    except (RecipeError, ConfigError, storage.InputError, OutputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_summary(stats, args.output, report))
    return 0


def format_summary(stats: dict, output: str, report: str | None) -> str:
    by_count = sorted(stats["dropped"].items(), key=lambda x: -x[1])
    dropped = ", ".join(f"{k} {v}" for k, v in by_count) or "none"
    lines = [
        f"select ({stats['recipe']}): {stats['in']} samples -> {stats['kept']} kept in "
        f"{stats['shards']} shards; dropped: {dropped}",
        f"  shards, manifest.json, uids.npy: {output}",
    ]
    return "\n".join(lines + ([f"  report: {report}"] if report else []))


if __name__ == "__main__":
    sys.exit(main())
