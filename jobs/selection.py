"""Select the final dataset: a recipe's thresholds, near-duplicate removal, final shards, report.

    curate select --shards OUT/shards --scores OUT/scores --recipe laion --output OUT/final
    spark-submit jobs/selection.py --dedup-distributor pyspark --clusters 4096 ...

Writes to ``--output``: the final shards (``NNNNN.tar`` + ``NNNNN.parquet``, img2dataset's
layout, resharded to the recipe's ``samples_per_shard``; each sample's json carries every score
and its provenance), ``selection.parquet`` (every sample, its drop reason, what it duplicates),
``uids.npy`` (DataComp's sorted uid subset), ``manifest.json`` (recipe, models, counts per
reason, each shard's count and sha256), ``stats.json`` and ``report.html``.

Semantic deduplication runs in memory on this machine (faiss, flat or IVF), or with
``--dedup-distributor pyspark`` the way it is done at scale: k-means centres from a sample, each
embedding sent to its nearest centre, and each cluster deduplicated in its own Spark task.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from vlcurate.pipeline import storage
from vlcurate.pipeline.recipe import RecipeError, load_recipe
from vlcurate.pipeline.select import dedup
from vlcurate.pipeline.select.stage import select
from vlcurate.pipeline.select.writer import PlanMismatch

DISTRIBUTORS = ("local", "pyspark")
FUNNEL = [
    ("extract", "extract"),
    ("filter", "candidates"),
    ("download", "shards"),
    ("score", "scores"),
]
UNITS = {
    "extract": "WARC response record",
    "filter": "pair",
    "download": "URL",
    "score": "downloaded sample",
}


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="select", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shards", required=True, help="folder of the downloaded NNNNN.tar shards")
    parser.add_argument("--scores", required=True, help="folder `curate score` wrote")
    parser.add_argument(
        "--recipe",
        required=True,
        help="bundled recipe name (laion, datacomp-basic, cc3m, demo) or YAML "
        "file; its select: section holds the thresholds",
    )
    parser.add_argument("--output", "-o", required=True, help="folder for the final shards")
    parser.add_argument(
        "--dedup-distributor",
        choices=DISTRIBUTORS,
        default="local",
        help="local: semantic dedup in memory here; pyspark: per IVF cluster, "
        "one Spark task each (default: local)",
    )
    parser.add_argument(
        "--clusters",
        type=int,
        default=None,
        help="k-means clusters for --dedup-distributor pyspark (default: about n / 5000)",
    )
    parser.add_argument(
        "--master",
        default=None,
        help="Spark master for --dedup-distributor pyspark (default: what "
        "spark-submit set, else local[*])",
    )
    parser.add_argument(
        "--report", default="", help="where report.html goes (default: OUTPUT/report.html)"
    )
    parser.add_argument("--no-report", action="store_true", help="skip report.html")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def funnel_of(shards: str) -> list[tuple[str, dict]]:
    """The earlier stages' stats.json, where the folders sit as `curate run` lays them out."""
    import json

    root = Path(shards).resolve().parent
    found = []
    for stage, folder in FUNNEL:
        path = root / folder / "stats.json"
        if path.exists():
            found.append((stage, {**json.loads(path.read_text()), "unit": UNITS[stage]}))
    return found


def spark_semantic(master: str | None, clusters: int | None):
    """Semantic dedup as one Spark task per k-means cluster of the embeddings."""

    def run(rows, rank, d, scores):
        from vlcurate.jobs import spark as spark_util
        from vlcurate.pipeline.select.inputs import load_embeddings

        names = np.array(rows["shard"].to_pylist(), dtype=object)
        emb_rows = rows["emb_row"].to_numpy()
        n = len(names)
        k = clusters or max(1, n // 5000)
        pick = np.random.default_rng(0).choice(n, min(n, 256 * k), replace=False)
        centroids = dedup.train_centroids(load_embeddings(scores, names[pick], emb_rows[pick]), k)
        spark = spark_util.session("curate-select", master)
        sc = spark.sparkContext
        by_shard: dict = {}
        for position, name in enumerate(names):
            member = (position, int(emb_rows[position]), int(rank[position]))
            by_shard.setdefault(name, []).append(member)
        centres = sc.broadcast(centroids)

        def to_clusters(item):
            name, members = item
            emb = load_embeddings(
                scores,
                np.array([name] * len(members), dtype=object),
                np.array([m[1] for m in members]),
            )
            clusters_of = dedup.nearest_centroid(emb, centres.value)
            for (position, _, r), cluster, vector in zip(
                members, clusters_of, emb.astype(np.float16), strict=True
            ):
                yield int(cluster), (position, r, vector.tobytes())

        def within(item):
            _, members = item
            members = list(members)
            vectors = np.stack([np.frombuffer(m[2], dtype=np.float16) for m in members])
            ranks = np.array([m[1] for m in members])
            found = dedup.semantic_duplicates(
                vectors, ranks, d.semantic_min_cosine, d.neighbors, "flat"
            )
            return [(members[i][0], members[j][0]) for i, j in enumerate(found) if j >= 0]

        pairs = (
            sc.parallelize(sorted(by_shard.items()), max(1, len(by_shard)))
            .flatMap(to_clusters)
            .groupByKey(numPartitions=k)
            .flatMap(within)
            .collect()
        )
        duplicate_of = np.full(n, -1, dtype=np.int64)
        for position, better in pairs:
            duplicate_of[position] = better
        return duplicate_of

    return run


def main(argv: list[str] | None = None, default_master: str | None = None) -> int:
    args = build_parser().parse_args(argv)
    report = None if args.no_report else args.report or storage.join(args.output, "report.html")
    try:
        recipe = load_recipe(args.recipe)
        semantic = None
        if args.dedup_distributor == "pyspark":
            semantic = spark_semantic(args.master or default_master, args.clusters)
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
    except (RecipeError, storage.InputError, PlanMismatch) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_summary(stats, args.output, report))
    return 0


def format_summary(stats: dict, output: str, report: str | None) -> str:
    by_count = sorted(stats["dropped"].items(), key=lambda x: -x[1])
    dropped = ", ".join(f"{k} {v}" for k, v in by_count)
    lines = [
        f"select ({stats['recipe']}): {stats['in']} samples -> {stats['kept']} kept in "
        f"{stats['shards']} shards; dropped: {dropped or 'none'}",
        f"  shards, manifest.json, uids.npy: {output}",
    ]
    if report:
        lines.append(f"  report: {report}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
