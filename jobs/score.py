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
A shard that is not whole (no ``NNNNN_stats.json`` or ``NNNNN.parquet`` beside it, a cut tar,
fewer samples than the parquet's successes) is refused by name and the others are scored.
``stats.json`` accounts for every sample (kept: decoded and scored; dropped: empty_file,
decode_error, too_large, bad_json, bad_text). Missing CLIP weights stop the job before any
image is read.

Distributors: ``local`` scores on this machine, one process per GPU (or one on the CPU);
``pyspark`` makes each shard one Spark task, like clip-retrieval's pyspark distributor: each
executor's Python worker loads the models once and keeps them, on the GPU Spark assigned to the
task (``spark.task.resource.gpu.amount=1``), or on ``--device`` when Spark assigns none.
"""

import argparse
import sys

from vlcurate.jobs.options import add_config_flags, config_from_args, weights_or_none
from vlcurate.jobs.spark import SparkExecutor
from vlcurate.pipeline import storage
from vlcurate.pipeline.config import ConfigError
from vlcurate.pipeline.executors import WorkerDied
from vlcurate.pipeline.score.clip import WeightsError
from vlcurate.pipeline.score.stage import ScoreConfig, local_executor, score_shards

DISTRIBUTORS = ("local", "pyspark")
DISTRIBUTOR_HELP = "local: this machine, one process per GPU; pyspark: one Spark task per shard"
CONF_HELP = "Spark setting for --distributor pyspark (repeatable): spark.task.resource.gpu.amount=1"


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="score", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--input", "-i", required=True, help="folder (or URL) of NNNNN.tar shards")
    add("--output", "-o", required=True, help="folder for scores and embeddings")
    add("--distributor", choices=DISTRIBUTORS, default="local", help=DISTRIBUTOR_HELP)
    add("--master", default=None, help="Spark master (default: spark-submit's, else local[*])")
    add("--conf", action="append", default=[], metavar="KEY=VALUE", help=CONF_HELP)
    add("--no-progress", action="store_true", help="hide the progress bar")
    add_config_flags(parser, ScoreConfig)
    return parser


def list_shards(folder: str) -> list[str]:
    import fsspec

    fs, path = fsspec.core.url_to_fs(storage.absolute(folder))
    local = fs.protocol in ("file", ("file", "local"))
    found = fs.glob(path.rstrip("/") + "/*.tar")
    return sorted(p if local else fs.unstrip_protocol(p) for p in found)


def run(shards, output, config, distributor="local", master=None, conf=None, progress=True):
    """Score ``shards`` into ``output`` on this machine or one Spark task per shard."""
    if distributor == "pyspark":
        executor = SparkExecutor(master, conf, progress, device=config.device)
    else:
        executor = local_executor(config, progress)
    return score_shards(shards, output, config, executor=executor)


def spark_conf(items: list[str]) -> dict:
    if bad := [item for item in items if "=" not in item]:
        raise ConfigError(f"--conf: {bad[0]!r} is not allowed (KEY=VALUE)")
    return dict(item.split("=", 1) for item in items)


def main(argv: list[str] | None = None, default_master: str | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.pretrained = weights_or_none(args.pretrained)
    try:
        config, conf = config_from_args(ScoreConfig, args), spark_conf(args.conf)
        shards = list_shards(args.input)
        if not shards:
            raise ConfigError(f"no .tar shards in {args.input}")
        master, progress = args.master or default_master, not args.no_progress
        stats = run(shards, args.output, config, args.distributor, master, conf, progress)
    except (WeightsError, ValueError, WorkerDied) as e:  # settings, weights, heads, a dead worker
        print(f"error: {e}", file=sys.stderr)
        return 1 if isinstance(e, WorkerDied) else 2
    print(format_summary(stats))
    return 0


def format_summary(stats: dict) -> str:
    lines = [
        f"score ({stats['model']}): {stats['in']} samples in {stats['shards']} shards -> "
        f"{stats['kept']} scored; dropped {stats['dropped']}; faces {stats.get('faces', 0)}"
    ]
    refused = stats.get("refused_units")
    if refused:
        lines.append(
            f"refused {len(refused)} shards {stats['units']['dropped']}, not scored: "
            + ", ".join(sorted(refused))
        )
    if stats.get("watermark") == "ocr":
        lines.append(
            f"watermark OCR ran on {stats.get('watermark_checked', 0)} images; "
            f"{stats.get('watermark_skipped', 0)} skipped (CLIP similarity below "
            f"--watermark-min-clip {stats.get('watermark_min_clip')}), their watermark_p is null"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
