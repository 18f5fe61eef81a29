"""``curate eval retrieval`` and ``curate eval zeroshot`` as library calls: which CLIP, its
batches, the source of the images, and the printed summaries (the metrics themselves are in
:mod:`vlcurate.pipeline.train.evaluate`)."""

from dataclasses import dataclass, field
from typing import ClassVar

from vlcurate.pipeline.config import Config
from vlcurate.pipeline.train import evaluate as ev


@dataclass
class ClipEvalConfig(Config):
    """The CLIP that ``curate eval retrieval|zeroshot`` evaluates, and how it runs."""

    section: ClassVar[str] = "eval"
    model: str = field(
        metadata={
            "help": "open_clip model name (ViT-B-32), a shipped config (tiny-clip), or a "
            "model config JSON"
        }
    )
    pretrained: str | None = field(
        metadata={
            "help": "open_clip tag (laion2b_s34b_b79k), weights file (a training run's "
            "final.pt), or none for random weights",
            "weights": True,
        }
    )
    device: str = field(default="auto", metadata={"help": "cpu, cuda, cuda:N or auto"})
    batch_size: int = field(default=256, metadata={"help": "images per batch", "min": 1})


def load_scorer(config: ClipEvalConfig):
    """The :class:`~vlcurate.pipeline.score.clip.ClipScorer` of the settings (WeightsError
    when its weights do not load)."""
    from vlcurate.pipeline.devices import resolve_device
    from vlcurate.pipeline.score.clip import ClipScorer

    device = resolve_device(config.device)
    return ClipScorer(model=config.model, pretrained=config.pretrained, device=device)


def run_retrieval(config: ClipEvalConfig, shards: str, progress: bool = True) -> dict:
    """:func:`~vlcurate.pipeline.train.evaluate.retrieval` over ``shards``."""
    return ev.retrieval(load_scorer(config), shards, config.batch_size, progress=progress)


def run_zeroshot(
    config: ClipEvalConfig,
    folder: str | None = None,
    shards: str | None = None,
    label_field: str | None = None,
    classes: list[str] | None = None,
    templates_file: str | None = None,
    progress: bool = True,
) -> dict:
    """:func:`~vlcurate.pipeline.train.evaluate.zeroshot` of a class-per-subfolder ``folder``
    or of ``shards`` labelled by their json's ``label_field``; the inputs are checked before
    the model loads."""
    if shards and not label_field:
        raise ValueError("--shards needs --label-field (the .json field holding the class)")
    templates = ev.load_templates(templates_file) if templates_file else ev.TEMPLATES
    scorer = load_scorer(config)
    if folder:
        images = ev.folder_source(folder)
    else:
        images = ev.encode_shards(
            scorer, shards, config.batch_size, label_field, progress=progress, with_text=False
        )
    return ev.zeroshot(scorer, classes, templates, images, config.batch_size, progress)


def _pct(x) -> str:
    return "   -  " if x is None else f"{100 * x:5.1f}%"


def format_retrieval(r: dict) -> str:
    """:func:`run_retrieval`'s result as the lines ``curate eval retrieval`` prints."""
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
    """:func:`run_zeroshot`'s result as the lines ``curate eval zeroshot`` prints."""
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
