"""Train models on curated shards: ``curate train clip`` and ``curate train frozen``.

``curate train clip`` trains a CLIP on WebDataset shards: open_clip's model and ClipLoss,
our loop (pipeline/train/clip.py): resampled shards, a shuffle buffer, AdamW with warmup and
cosine, AMP on CUDA, gradient accumulation, checkpoints with exact resume, metrics.jsonl.

    curate train clip --shards 'out/demo/final/{00000..00003}.tar' --model tiny-clip \\
        --output runs/tiny --samples-per-epoch 2000 --epochs 5 --batch-size 64 --device cpu
    curate train clip --shards 's3://b/final/{00000..09999}.tar' --model ViT-B-32 \\
        --output runs/b32 --batch-size 256 --precision bf16       # one GPU
    torchrun --nproc_per_node 8 -m vlcurate.jobs.cli train clip --shards ... --output runs/b32
                                                         # 8 GPUs: DDP, features gathered

``--model`` is an open_clip model name, a config shipped with curate (``tiny-clip``), or a path
to a JSON model config in open_clip's format. Running the same command again resumes from
``OUTPUT/checkpoints/latest.pt``. ``OUTPUT/final.pt`` loads in ``curate score --model MODEL
--pretrained OUTPUT/final.pt``, ``curate eval`` and ``open_clip.create_model_and_transforms``.

``curate train frozen`` trains a Frozen-style model (pipeline/train/frozen.py): the vision tower
and a linear map to prefix embeddings of a frozen causal LM (SmolLM2-135M by default), on caption
shards or, with ``--interleaved``, on interleaved document shards:

    curate train frozen --shards 'out/scenes/{00000..00007}.tar' --output runs/frozen \\
        --clip-model tiny-clip --clip-pretrained miniweb \\
        --steps 300 --batch-size 16 --device cpu
    curate eval icl --shards 'out/heldout/00000.tar' --label-field color \\
        --models frozen blind clip-prototype chance --frozen runs/frozen/final.pt
"""

import argparse
import json
import sys

from vlcurate.jobs.options import add_config_flags, config_from_args
from vlcurate.pipeline.train.clip_config import TrainConfig


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    from vlcurate.pipeline.train.frozen import FrozenTrainConfig

    parser = parser or argparse.ArgumentParser(
        prog="train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="what", required=True, metavar="MODEL")
    for name, help_text, config_cls in (
        ("clip", "a CLIP (open_clip) on image-text shards", TrainConfig),
        ("frozen", "a Frozen-style model: vision -> prefix of a frozen LM", FrozenTrainConfig),
    ):
        p = sub.add_parser(
            name,
            help=help_text,
            description=__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        add_config_flags(p, config_cls)
    return parser


def main_frozen(args) -> int:
    from vlcurate.pipeline.icl.lm import LanguageModelError
    from vlcurate.pipeline.score.clip import WeightsError
    from vlcurate.pipeline.train.frozen import FrozenTrainConfig
    from vlcurate.pipeline.train.frozen import train as train_frozen

    config = config_from_args(FrozenTrainConfig, args)
    try:
        summary = train_frozen(config)
    except (ValueError, FileNotFoundError, WeightsError, LanguageModelError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=1))
    print(
        f"train frozen: {summary['steps']} steps, loss {summary['first_loss']:.3f} -> "
        f"{summary['loss']:.3f}, {summary['seconds']:.0f} s; weights: {summary['final']}"
    )
    return 0


def main_clip(args) -> int:
    from vlcurate.pipeline.train.clip import train

    config = config_from_args(TrainConfig, args)
    if not config.shards:
        print(
            "error: --shards is required (a brace pattern such as 'DIR/{00000..00009}.tar')",
            file=sys.stderr,
        )
        return 2
    try:
        summary = train(config)
    except (ValueError, RuntimeError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if summary.get("rank", 0) == 0:
        print(json.dumps(summary, indent=1))
        done = f"{summary['steps']}/{summary['total_steps']} steps"
        print(
            f"train: {done}, last loss {summary['loss']:.4f}, {summary['seconds']:.0f} s; "
            f"weights: {summary['final']}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return main_frozen(args) if args.what == "frozen" else main_clip(args)


if __name__ == "__main__":
    sys.exit(main())
