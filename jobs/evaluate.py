"""Evaluate a CLIP checkpoint: image-text retrieval recall@1/5/10 and zero-shot accuracy.

    curate eval retrieval --shards 'out/heldout/{00000..00003}.tar' \\
        --model tiny-clip --pretrained out/clip/final.pt --output retrieval.json
    curate eval zeroshot --shards 'out/heldout/00000.tar' --label-field kind \\
        --classes circle,square,triangle,star --model tiny-clip --pretrained out/clip/final.pt
    curate eval zeroshot --folder images/ --templates-file prompts.txt \\
        --model ViT-B-32 --pretrained laion2b_s34b_b79k

retrieval: every image of the shards (KEY.jpg + KEY.txt, img2dataset's layout) against every
caption, and back; recall@k counts ties against the model; ``caption_match_R@1`` also accepts
another sample's identical caption. zeroshot: CLIP's prompt-ensemble classifier over the class
names (default: the sorted distinct labels, or the subfolders of --folder, ``_`` read as a
space), with top-1/top-5 accuracy, per-class accuracy and the confusion matrix. Undecodable
images are counted and skipped. ``--pretrained none`` gives random weights (chance level).
"""

import argparse
import json
import sys

from vlcurate.jobs.options import weights_or_none
from vlcurate.pipeline import storage
from vlcurate.pipeline.score.clip import WeightsError


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        required=True,
        help="open_clip model name (ViT-B-32), a shipped config (tiny-clip), or a "
        "model config JSON",
    )
    p.add_argument(
        "--pretrained",
        required=True,
        help="open_clip tag (laion2b_s34b_b79k), weights file (a training run's "
        "final.pt), or none for random weights",
    )
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto)")
    p.add_argument("--batch-size", type=int, default=256, help="images per batch (default: 256)")
    p.add_argument("--output", "-o", default=None, help="write the results as JSON here")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="eval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="task", required=True, metavar="TASK")
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
    _icl_parser(sub)
    return parser


def _classes(args) -> list[str] | None:
    if args.classes:
        return [c.strip() for c in args.classes.split(",") if c.strip()]
    if args.classes_file:
        with open(args.classes_file) as f:
            return [ln.strip() for ln in f if ln.strip()]
    return None


def run(args) -> dict:
    from vlcurate.pipeline.devices import resolve_device
    from vlcurate.pipeline.score.clip import ClipScorer
    from vlcurate.pipeline.train import evaluate as ev

    pretrained = weights_or_none(args.pretrained)
    if args.task == "zeroshot" and args.shards and not args.label_field:
        raise ValueError("--shards needs --label-field (the .json field holding the class)")
    templates = (
        ev.load_templates(args.templates_file)
        if args.task == "zeroshot" and args.templates_file
        else ev.TEMPLATES
    )
    scorer = ClipScorer(model=args.model, pretrained=pretrained, device=resolve_device(args.device))
    progress = not args.no_progress
    if args.task == "retrieval":
        return ev.retrieval(scorer, args.shards, args.batch_size, progress=progress)
    if args.folder:
        images = ev.folder_source(args.folder)
    else:
        images = ev.encode_shards(
            scorer,
            args.shards,
            args.batch_size,
            args.label_field,
            progress=progress,
            with_text=False,
        )
    return ev.zeroshot(scorer, _classes(args), templates, images, args.batch_size, progress)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.task == "icl":
        return icl_main(args)
    try:
        results = run(args)
    except (WeightsError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_retrieval(results) if args.task == "retrieval" else format_zeroshot(results))
    if args.output:
        with storage.atomic_open(args.output, "w") as f:
            json.dump(results, f, indent=2)
        print(f"  results: {args.output}")
    return 0


def _pct(x) -> str:
    return "   -  " if x is None else f"{100 * x:5.1f}%"


def format_retrieval(r: dict) -> str:
    ks = list(r["chance"])
    lines = [
        f"retrieval ({r['model']}, {r['pretrained']}): {r['n']} pairs, "
        f"{r['skipped']} skipped, {r['duplicate_captions']} with a repeated caption",
        "               " + " ".join(f"{k:>6}" for k in ks),
    ]
    for name, key in (
        ("image->text", "image_to_text"),
        ("text->image", "text_to_image"),
        ("chance", "chance"),
    ):
        lines.append(f"  {name:<12} " + " ".join(_pct(r[key][k]) for k in ks))
    lines.append(f"  image->text R@1, identical caption counts: {_pct(r['caption_match_R@1'])}")
    return "\n".join(lines)


def format_zeroshot(r: dict) -> str:
    lines = [
        f"zeroshot ({r['model']}, {r['pretrained']}): {r['n']} images, {len(r['classes'])} "
        f"classes, {len(r['templates'])} templates; {r['skipped']} skipped, "
        f"{r['excluded']} not in the classes",
        f"  top-1 {_pct(r['top1'])}   top-{r['top5_k']} {_pct(r['top5'])}   "
        f"chance {_pct(r['chance'])}",
    ]
    width = max(12, *(len(c) for c in r["classes"]))
    for name, c in r["per_class"].items():
        lines.append(f"  {name:<{width}} {c['n']:>6}  {_pct(c['accuracy'])}")
    return "\n".join(lines)


# --- icl -----------------------------------------------------------------------------------

ICL_MODELS = ("frozen", "blind", "clip-prototype", "chance", "oracle")


def _icl_parser(sub) -> None:
    i = sub.add_parser(
        "icl",
        help="few-shot in-context learning: Frozen-style episodes",
        description="Few-shot episodes after Frozen's protocol (support images "
        "named with nonsense or real words, then a query to name), run through "
        "in-context learners; prints the Frozen-style table.",
    )
    source = i.add_mutually_exclusive_group(required=True)
    source.add_argument("--shards", help="shard brace pattern (quote it); needs --label-field")
    source.add_argument("--folder", help="folder with one subfolder of images per class")
    source.add_argument(
        "--frozen-tasks",
        metavar="FOLDER",
        help="Frozen's released tasks (open_ended_mi, real_name_mi, fast_vqa "
        "files and their *_all_questions.json), evaluated as released; the grid "
        "flags are then ignored",
    )
    source.add_argument(
        "--episodes",
        metavar="FILE.jsonl",
        help="reuse saved episodes (an earlier run's episodes.jsonl); the grid "
        "flags are then ignored",
    )
    i.add_argument("--label-field", help="with --shards: the .json field holding the class")
    i.add_argument(
        "--ways",
        type=int,
        nargs="+",
        default=[2, 5],
        help="classes per episode, one column set each (default: 2 5)",
    )
    i.add_argument(
        "--shots",
        type=int,
        nargs="+",
        default=[1, 3, 5],
        help="support images per class (inner shots) (default: 1 3 5)",
    )
    i.add_argument(
        "--repeats",
        type=int,
        nargs="+",
        default=[0],
        help="extra showings of the support set (default: 0)",
    )
    i.add_argument(
        "--induction",
        choices=("both", "on", "off"),
        default="both",
        help="task-induction sentence first: both settings, on or off (default: both)",
    )
    i.add_argument(
        "--episodes-per-set", type=int, default=100, help="episodes drawn per column (default: 100)"
    )
    i.add_argument(
        "--names",
        choices=("nonsense", "real"),
        default="nonsense",
        help="bind classes to nonsense words or their real labels (default: nonsense)",
    )
    i.add_argument(
        "--seed",
        type=int,
        default=0,
        help="episode seed; also the chance model's seed (default: 0)",
    )
    i.add_argument(
        "--fast-vqa",
        metavar="ATTRIBUTE",
        help="fast-VQA episodes: after the named support set, ask for this attribute "
        "of the named object (e.g. color, with --shards and a .json field of that "
        "name; the mini web's scenes have color and kind)",
    )
    i.add_argument(
        "--models",
        nargs="+",
        choices=ICL_MODELS,
        default=["clip-prototype", "chance"],
        help="models to run: frozen (needs --frozen), blind (the same LM without "
        "the images), clip-prototype, chance, oracle (a harness check) "
        "(default: clip-prototype chance)",
    )
    i.add_argument(
        "--frozen",
        metavar="FINAL.pt",
        help="for frozen: the weights of `curate train frozen` (OUTPUT/final.pt); "
        "the blind, clip-prototype (on the frozen model's CLIP unless --clip-model "
        "is given) and chance baselines are then added",
    )
    i.add_argument(
        "--no-baselines",
        action="store_true",
        help="with frozen: run only the models named in --models",
    )
    i.add_argument(
        "--lm",
        default="smollm2",
        help="for blind without --frozen: the causal LM (smollm2, a Hugging Face "
        "name or folder); with --frozen, blind uses the frozen model's LM "
        "(default: smollm2)",
    )
    i.add_argument(
        "--clip-model",
        help="for clip-prototype: open_clip model name or shipped config (tiny-clip); "
        "default with --frozen: the frozen model's",
    )
    i.add_argument(
        "--clip-pretrained", help="for clip-prototype: open_clip tag, weights file, or miniweb"
    )
    i.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto)")
    i.add_argument("--batch-size", type=int, default=64, help="images per CLIP batch (default: 64)")
    i.add_argument(
        "--output",
        "-o",
        help="folder for icl.md, icl.json and episodes.jsonl (and predictions.jsonl)",
    )
    i.add_argument(
        "--predictions",
        action="store_true",
        help="also write every prediction to predictions.jsonl (needs --output)",
    )
    i.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _icl_models(args) -> list:
    from vlcurate.pipeline.devices import resolve_device
    from vlcurate.pipeline.icl import models as icl_models

    out, frozen = [], None
    names = list(dict.fromkeys(args.models))
    if "frozen" in names:
        if not args.frozen:
            raise ValueError("the frozen model needs --frozen (OUTPUT/final.pt of train frozen)")
        from vlcurate.pipeline.icl.frozen import FrozenModel

        frozen = FrozenModel.load(args.frozen, device=resolve_device(args.device))
        if not args.no_baselines:  # Frozen's model is always reported beside its baselines
            names += [b for b in ("blind", "clip-prototype", "chance") if b not in names]
    clip_model, clip_pretrained = args.clip_model, args.clip_pretrained
    if frozen is not None and not clip_model:  # the prototype on the frozen model's own CLIP
        clip_model = frozen.config.clip_model
        clip_pretrained = clip_pretrained or str(frozen.config.clip_pretrained)
    for name in names:
        if name in ("frozen", "blind"):
            from vlcurate.pipeline.icl.frozen import BlindICL, FrozenICL, PrefixLM
            from vlcurate.pipeline.icl.lm import load_causal_lm

            if name == "frozen":
                out.append(FrozenICL(frozen))
            else:
                lm = (
                    frozen.lm
                    if frozen
                    else PrefixLM(*load_causal_lm(args.lm, resolve_device(args.device)))
                )
                out.append(BlindICL(lm))
        elif name == "oracle":
            out.append(icl_models.Oracle())
        elif name == "chance":
            out.append(icl_models.Chance(args.seed))
        else:
            if not clip_model or not clip_pretrained:
                raise ValueError("clip-prototype needs --clip-model and --clip-pretrained")
            from vlcurate.pipeline.score.clip import ClipScorer

            pretrained = weights_or_none(clip_pretrained)
            scorer = ClipScorer(
                model=clip_model, pretrained=pretrained, device=resolve_device(args.device)
            )
            out.append(icl_models.ClipPrototype(scorer, args.batch_size))
    return out


def run_icl(args) -> tuple[dict, dict]:
    """Build (or read) the episode sets and evaluate the models: ``(results, sets)``."""
    from vlcurate.pipeline.icl import episodes as ep
    from vlcurate.pipeline.icl import evaluate as icl_eval

    notes: list[str] = []
    if args.episodes:
        sets = icl_eval.group_episodes(ep.read_jsonl(args.episodes))
    elif args.frozen_tasks:
        episodes, notes = ep.frozen_episodes(args.frozen_tasks)
        sets = icl_eval.group_episodes(episodes)
    else:
        if args.shards:
            if not args.label_field:
                raise ValueError("--shards needs --label-field (the .json field holding the class)")
            from vlcurate.pipeline.storage import expand_shards

            attributes = [args.fast_vqa] if args.fast_vqa else []
            items = ep.shard_source(expand_shards(args.shards), args.label_field, attributes)
        else:
            items = ep.folder_source(args.folder)
        inductions = {"both": (False, True), "on": (True,), "off": (False,)}[args.induction]
        sets, notes = icl_eval.episode_grid(
            items,
            ways=args.ways,
            inductions=inductions,
            shots=args.shots,
            repeats=args.repeats,
            episodes=args.episodes_per_set,
            seed=args.seed,
            names=args.names,
            fast_vqa=args.fast_vqa,
        )
    if not sets:
        raise ValueError("no episode set could be built: " + "; ".join(notes))
    results = icl_eval.evaluate(
        _icl_models(args), sets, predictions=args.predictions, progress=not args.no_progress
    )
    results["notes"] = notes
    return results, sets


def icl_main(args) -> int:
    from pathlib import Path

    from vlcurate.pipeline.icl import episodes as ep
    from vlcurate.pipeline.icl import evaluate as icl_eval
    from vlcurate.pipeline.icl.lm import LanguageModelError

    try:
        results, sets = run_icl(args)
    except (WeightsError, LanguageModelError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for note in results["notes"]:
        print(f"note: {note}")
    print(icl_eval.frozen_table(results))
    print(icl_eval.speed_line(results))
    if args.output:
        paths = icl_eval.write_results(results, args.output, predictions=args.predictions)
        episodes_path = str(Path(args.output) / "episodes.jsonl")
        ep.write_jsonl((e for episodes in sets.values() for e in episodes), episodes_path)
        for kind, path in {**paths, "episodes": episodes_path}.items():
            print(f"  {kind}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
