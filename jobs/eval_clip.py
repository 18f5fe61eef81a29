"""``curate eval retrieval`` and ``curate eval zeroshot`` (see jobs/evaluate.py): flags, then
one library call (:mod:`vlcurate.pipeline.train.clip_eval`), the summary and the JSON."""

import argparse
import json
import sys

from vlcurate.jobs.options import add_config_flags, config_from_args
from vlcurate.pipeline import storage
from vlcurate.pipeline.score.clip import WeightsError
from vlcurate.pipeline.train import clip_eval
from vlcurate.pipeline.train.clip_eval import ClipEvalConfig


def _common(p: argparse.ArgumentParser) -> None:
    add_config_flags(p, ClipEvalConfig)
    p.add_argument("--output", "-o", default=None, help="write the results as JSON here")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def add_parsers(sub) -> None:
    r = sub.add_parser(
        "retrieval",
        help="image<->text recall@1/5/10 on captioned shards",
        description="Image<->text retrieval recall@1/5/10 among all the pairs of the shards.",
    )
    r.add_argument(
        "--shards", required=True, help="shard brace pattern: 'DIR/{00000..00003}.tar' (quote it)"
    )
    _common(r)
    z = sub.add_parser(
        "zeroshot",
        help="zero-shot classification accuracy",
        description="Zero-shot classification with CLIP's prompt ensemble, "
        "images from a class-per-subfolder folder or labelled shards.",
    )
    source = z.add_mutually_exclusive_group(required=True)
    source.add_argument("--folder", help="folder with one subfolder of images per class")
    source.add_argument("--shards", help="shard brace pattern; needs --label-field")
    z.add_argument("--label-field", help="the field of each sample's .json holding its class")
    classes = z.add_mutually_exclusive_group()
    classes.add_argument("--classes", help="comma-separated class names (default: all labels)")
    classes.add_argument("--classes-file", help="text file of class names, one per line")
    z.add_argument(
        "--templates-file",
        help="prompt templates, one per line with {} for the class name (default: "
        "'a photo of a {}.', 'a picture of a {}.', 'a {}.')",
    )
    _common(z)


def _classes(args) -> list[str] | None:
    if args.classes:
        return [c.strip() for c in args.classes.split(",") if c.strip()]
    if args.classes_file:
        with open(args.classes_file) as f:
            return [ln.strip() for ln in f if ln.strip()]
    return None


def run(args, config: ClipEvalConfig) -> dict:
    progress = not args.no_progress
    if args.task == "retrieval":
        return clip_eval.run_retrieval(config, args.shards, progress)
    return clip_eval.run_zeroshot(
        config,
        folder=args.folder,
        shards=args.shards,
        label_field=args.label_field,
        classes=_classes(args),
        templates_file=args.templates_file,
        progress=progress,
    )


def main(args: argparse.Namespace) -> int:
    config = config_from_args(ClipEvalConfig, args)
    try:
        results = run(args, config)
    except (WeightsError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    retrieval = args.task == "retrieval"
    print(clip_eval.format_retrieval(results) if retrieval else clip_eval.format_zeroshot(results))
    if args.output:
        with storage.atomic_open(args.output, "w") as f:
            json.dump(results, f, indent=2)
        print(f"  results: {args.output}")
    return 0
