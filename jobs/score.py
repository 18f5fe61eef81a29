"""Score downloaded shards: CLIP similarity and embeddings, faces, size and pHash.

    curate score --input OUT/shards --output OUT/scores                       # ViT-B-32, LAION-2B
    curate score --input OUT/shards --output OUT/scores --model tiny-clip --pretrained none

Writes, per shard, ``scores/NNNNN.parquet`` (every sample, with its decode status) and
clip-retrieval's ``img_emb/NNNNN.npy``, ``text_emb/NNNNN.npy`` and ``metadata/NNNNN.parquet``
(float16, L2-normalised, same order), then ``_done/NNNNN.json``; a rerun skips done shards.
``stats.json`` accounts for every sample (kept: decoded and scored; dropped: empty_file,
decode_error, too_large). Missing CLIP weights stop the job before any image is read.
"""

import argparse
import sys

from jobs.options import add_config_flags, config_from_args
from pipeline import storage
from pipeline.score.clip import WeightsError
from pipeline.score.stage import ScoreConfig, score_shards


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="score", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--input", "-i", required=True, help="folder of NNNNN.tar shards")
    parser.add_argument("--output", "-o", required=True, help="folder for scores and embeddings")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_config_flags(parser, ScoreConfig)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = config_from_args(ScoreConfig, args)
    if config.pretrained in ("none", "null", ""):
        config.pretrained = None
    import fsspec

    fs, path = fsspec.core.url_to_fs(storage.absolute(args.input))
    shards = sorted(fs.unstrip_protocol(p) if fs.protocol not in ("file", ("file", "local")) else p
                    for p in fs.glob(path.rstrip("/") + "/*.tar"))  # fmt: skip
    if not shards:
        print(f"error: no .tar shards in {args.input}", file=sys.stderr)
        return 2
    try:
        stats = score_shards(shards, args.output, config, progress=not args.no_progress)
    except WeightsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"score ({stats['model']}): {stats['in']} samples in {len(shards)} shards -> "
        f"{stats['kept']} scored; dropped {stats['dropped']}; faces {stats.get('faces', 0)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
