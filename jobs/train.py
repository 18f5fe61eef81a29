"""Train a CLIP on WebDataset shards (``curate train clip``): open_clip's model and ClipLoss,
our loop (pipeline/train/clip.py): resampled shards, a shuffle buffer, AdamW with warmup and
cosine, AMP on CUDA, gradient accumulation, checkpoints with exact resume, metrics.jsonl.

    curate train clip --shards 'out/demo/final/{00000..00003}.tar' --model tiny-clip \\
        --output runs/tiny --samples-per-epoch 2000 --epochs 5 --batch-size 64 --device cpu
    curate train clip --shards 's3://b/final/{00000..09999}.tar' --model ViT-B-32 \\
        --output runs/b32 --batch-size 256 --precision bf16       # one GPU
    torchrun --nproc_per_node 8 -m jobs.cli train clip --shards ... --output runs/b32
                                                         # 8 GPUs: DDP, features gathered

``--model`` is an open_clip model name, a config shipped with curate (``tiny-clip``), or a path
to a JSON model config in open_clip's format. Running the same command again resumes from
``OUTPUT/checkpoints/latest.pt``. ``OUTPUT/final.pt`` loads in ``curate score --model MODEL
--pretrained OUTPUT/final.pt``, ``curate eval`` and ``open_clip.create_model_and_transforms``.
"""

import argparse
import json
import sys

from jobs.options import add_config_flags, config_from_args
from pipeline.train.clip import TrainConfig, train

MODELS = ("clip",)


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="what", required=True, metavar="MODEL")
    clip = sub.add_parser("clip", help="a CLIP (open_clip) on image-text shards",
                          description=__doc__,
                          formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    add_config_flags(clip, TrainConfig)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = config_from_args(TrainConfig, args)
    if not config.shards:
        print("error: --shards is required (a brace pattern such as 'DIR/{00000..00009}.tar')",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        summary = train(config)
    except (ValueError, RuntimeError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if summary.get("rank", 0) == 0:
        print(json.dumps(summary, indent=1))
        done = f"{summary['steps']}/{summary['total_steps']} steps"
        print(f"train: {done}, last loss {summary['loss']:.4f}, {summary['seconds']:.0f} s; "
              f"weights: {summary['final']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
