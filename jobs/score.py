"""Score downloaded shards: CLIP similarity and embeddings, NSFW, watermark, faces, size, pHash.

    curate score --input OUT/shards --output OUT/scores                       # ViT-B-32, LAION-2B
    curate score --input OUT/shards --output OUT/scores --model tiny-clip --pretrained none
    curate score ... --watermark-min-clip 0.28          # OCR only the pairs LAION would keep
    spark-submit --master spark://HOST:7077 \\
        --conf spark.executor.resource.gpu.amount=8 --conf spark.task.resource.gpu.amount=1 \\
        --conf spark.executor.resource.gpu.discoveryScript=/opt/spark/getGpusResources.sh \\
        jobs/score.py --distributor pyspark --input s3://b/shards --output s3://b/scores

Writes, per shard, ``scores/NNNNN.parquet`` (every sample, with its decode status) and
clip-retrieval's ``img_emb/NNNNN.npy``, ``text_emb/NNNNN.npy`` and ``metadata/NNNNN.parquet``
(float16, L2-normalised, same order), then ``_done/NNNNN.json``; a rerun skips done shards.
``stats.json`` accounts for every sample (kept: decoded and scored; dropped: empty_file,
decode_error, too_large). Missing CLIP weights stop the job before any image is read.

Distributors: ``local`` scores on this machine, one process per GPU (or one on the CPU);
``pyspark`` makes each shard one Spark task, like clip-retrieval's pyspark distributor: each
executor's Python worker loads the models once and keeps them, on the GPU Spark assigned to the
task (``spark.task.resource.gpu.amount=1``), or on ``--device`` when Spark assigns none.
"""

import argparse
import sys

from vlcurate.jobs.options import add_config_flags, config_from_args, weights_or_none
from vlcurate.pipeline import storage
from vlcurate.pipeline.devices import resolve_device
from vlcurate.pipeline.score.clip import WeightsError
from vlcurate.pipeline.score.heads import HeadError
from vlcurate.pipeline.score.stage import (
    ScoreConfig,
    Scorers,
    done_result,
    score_shard,
    score_shards,
    write_stats,
)

DISTRIBUTORS = ("local", "pyspark")


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="score", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--input", "-i", required=True, help="folder (or URL) of NNNNN.tar shards")
    parser.add_argument("--output", "-o", required=True, help="folder for scores and embeddings")
    parser.add_argument(
        "--distributor",
        choices=DISTRIBUTORS,
        default="local",
        help="local: this machine, one process per GPU; pyspark: one Spark task "
        "per shard (default: local)",
    )
    parser.add_argument(
        "--master",
        default=None,
        help="Spark master for --distributor pyspark; default: what spark-submit "
        "set, else local[*]",
    )
    parser.add_argument(
        "--conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Spark setting for --distributor pyspark (repeatable), e.g. "
        "spark.task.resource.gpu.amount=1",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_config_flags(parser, ScoreConfig)
    return parser


def list_shards(folder: str) -> list[str]:
    import fsspec

    fs, path = fsspec.core.url_to_fs(storage.absolute(folder))
    local = fs.protocol in ("file", ("file", "local"))
    found = fs.glob(path.rstrip("/") + "/*.tar")
    return sorted(p if local else fs.unstrip_protocol(p) for p in found)


_TASK_SCORERS: dict = {}  # per Spark Python worker: models loaded once, reused by later tasks


def score_task(shard: str, output: str, config: ScoreConfig) -> dict:
    """One Spark task: score one shard on the task's GPU (if Spark assigned one)."""
    from pyspark import TaskContext

    done = done_result(output, shard, config)
    if done is not None:
        return done
    context = TaskContext.get()
    gpus = context.resources().get("gpu") if context is not None else None
    device = f"cuda:{gpus.addresses[0]}" if gpus else resolve_device(config.device)
    if device not in _TASK_SCORERS:
        _TASK_SCORERS[device] = Scorers(config, device)
    return score_shard(shard, output, _TASK_SCORERS[device])


def score_with_spark(shards, output, config, master=None, conf=None, progress=True) -> dict:
    from vlcurate.jobs import spark as spark_util

    output = storage.absolute(output)
    done = {s: done_result(output, s, config) for s in shards}
    todo = [s for s in shards if done[s] is None]
    results = [done[s] for s in shards if s not in todo]
    if todo:
        Scorers(config, "cpu")  # bad model settings fail here, before Spark starts any task
        spark = spark_util.session("curate-score", master, conf)
        rdd = spark.sparkContext.parallelize(todo, len(todo))
        with spark_util.progress(spark, len(todo), "score", unit="shard", enabled=progress):
            results += rdd.map(lambda shard: score_task(shard, output, config)).collect()
    return write_stats(output, results, config)


def main(argv: list[str] | None = None, default_master: str | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = config_from_args(ScoreConfig, args)
    config.pretrained = weights_or_none(config.pretrained)
    shards = list_shards(args.input)
    if not shards:
        print(f"error: no .tar shards in {args.input}", file=sys.stderr)
        return 2
    try:
        if args.distributor == "pyspark":
            conf = dict(item.split("=", 1) for item in args.conf)
            stats = score_with_spark(
                shards,
                args.output,
                config,
                args.master or default_master,
                conf,
                progress=not args.no_progress,
            )
        else:
            stats = score_shards(shards, args.output, config, progress=not args.no_progress)
    except (WeightsError, HeadError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_summary(stats))
    return 0


def format_summary(stats: dict) -> str:
    lines = [
        f"score ({stats['model']}): {stats['in']} samples in {stats['shards']} shards -> "
        f"{stats['kept']} scored; dropped {stats['dropped']}; faces {stats.get('faces', 0)}"
    ]
    if stats.get("watermark") == "ocr":
        lines.append(
            f"watermark OCR ran on {stats.get('watermark_checked', 0)} images; "
            f"{stats.get('watermark_skipped', 0)} skipped (CLIP similarity below "
            f"--watermark-min-clip {stats.get('watermark_min_clip')}), their watermark_p is null"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
