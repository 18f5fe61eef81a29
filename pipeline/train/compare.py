"""DataComp's loop at small scale: filter one scored pool with each recipe, train the same CLIP
with the same budget on each selection, evaluate every model the same way, side by side.

For each recipe, :func:`compare` runs the select stage on the shared ``shards`` and ``scores``
into ``OUTPUT/NAME/final``, trains :class:`CompareConfig`'s model on those shards into
``OUTPUT/NAME/train`` (same seed, so the same initial weights and the same schedule; only the
data differ), and evaluates ``final.pt`` on ``eval_shards``: retrieval recall@1/5/10 both ways,
and zero-shot accuracy on a label field when ``label_field`` is set. It writes
``OUTPUT/compare.json``, ``compare.md`` (the table) and ``compare.png`` (the plot).

The budget is samples seen (``samples``), not epochs, as in DataComp: a recipe that keeps
fewer samples sees each of them more often. Training draws shards with replacement either
way; when a selection is smaller than the budget, the result says how many times each sample
is seen on average.
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar

from vlcurate.pipeline.config import Config
from vlcurate.pipeline.recipe import load_recipe

WAYS = ("image_to_text", "text_to_image")
METRICS = tuple((way, k) for way in WAYS for k in ("R@1", "R@5", "R@10"))


@dataclass
class CompareConfig(Config):
    """The shared budget and evaluation of ``curate compare``: the same for every recipe."""

    section: ClassVar[str] = "compare"
    eval_shards: str = field(
        default="", metadata={"help": "held-out shards to evaluate on (brace pattern)"}
    )
    samples: int = field(
        default=10_000, metadata={"help": "training budget: samples seen", "min": 1}
    )
    model: str = field(default="tiny-clip", metadata={"help": "open_clip model name or JSON"})
    batch_size: int = field(
        default=64, metadata={"help": "pairs per step", "min": 1, "at_most": "samples"}
    )
    lr: float = field(default=1e-3, metadata={"help": "peak learning rate", "above": 0})
    warmup_steps: int = field(default=10, metadata={"help": "linear warmup steps", "min": 0})
    weight_decay: float = field(default=0.1, metadata={"help": "AdamW weight decay", "min": 0})
    seed: int = field(
        default=0, metadata={"help": "seed: same initial weights for every recipe", "min": 0}
    )
    workers: int = field(default=2, metadata={"help": "DataLoader processes", "min": 0})
    device: str = field(default="auto", metadata={"help": "cpu, cuda or auto"})
    label_field: str | None = field(
        default=None, metadata={"help": "json field of eval_shards for zero-shot (e.g. kind)"}
    )


def recipe_name(spec: str) -> str:
    return Path(spec).stem


def compare(
    recipes: list[str],
    shards: str,
    scores: str,
    output: str,
    config: CompareConfig,
    progress: bool = True,
) -> dict:
    """Select, train and evaluate per recipe; write and return the comparison."""
    from vlcurate.pipeline.select.stage import select

    if not config.eval_shards:
        raise ValueError("eval_shards is needed: held-out shards to evaluate every model on")
    names = [recipe_name(r) for r in recipes]
    if len(set(names)) != len(names):
        raise ValueError(f"recipes need distinct names, got {names}")
    loaded = [load_recipe(r) for r in recipes]  # a bad recipe fails before any work
    out = Path(output)
    rows = []
    for name, recipe in zip(names, loaded, strict=True):
        final = out / name / "final"
        stats = select(shards, scores, recipe, str(final), progress=progress, report=None)
        row = {"recipe": name, "kept": stats["kept"], "in": stats["in"], "notes": []}
        if stats["kept"] == 0:
            row["notes"].append("kept no sample: nothing to train on")
            rows.append(row)
            continue
        if stats["kept"] < config.samples:
            row["notes"].append(
                f"keeps {stats['kept']} samples, fewer than the budget of {config.samples}: "
                f"resampled, each seen about {config.samples / stats['kept']:.1f} times"
            )
        row.update(_train_and_evaluate(final, out / name / "train", config, progress))
        rows.append(row)
    result = {"config": asdict(config), "recipes": recipes, "rows": rows}
    (out / "compare.json").write_text(json.dumps(result, indent=1))
    (out / "compare.md").write_text(table(result))
    plot(result, out / "compare.png")
    return result


def _train_and_evaluate(final: Path, run: Path, config: CompareConfig, progress: bool) -> dict:
    from vlcurate.pipeline.devices import resolve_device
    from vlcurate.pipeline.score.clip import ClipScorer
    from vlcurate.pipeline.storage import brace_pattern
    from vlcurate.pipeline.train import evaluate
    from vlcurate.pipeline.train.clip import TrainConfig, train

    shards = brace_pattern(sorted(str(p) for p in final.glob("*.tar")))
    steps = config.samples // config.batch_size
    summary = train(
        TrainConfig(
            shards=shards,
            model=config.model,
            output=str(run),
            batch_size=config.batch_size,
            samples_per_epoch=steps * config.batch_size,
            epochs=1,
            lr=config.lr,
            warmup_steps=config.warmup_steps,
            weight_decay=config.weight_decay,
            seed=config.seed,
            workers=config.workers,
            device=config.device,
            checkpoint_every=0,
            shuffle_buffer=min(1000, config.samples),
            progress=progress,
        )
    )
    device = resolve_device(config.device)
    scorer = ClipScorer(model=config.model, pretrained=summary["final"], device=device)
    found = {
        "steps": summary["steps"],
        "loss": summary["loss"],
        "retrieval": evaluate.retrieval(scorer, config.eval_shards),
    }
    if config.label_field:
        found["zeroshot"] = evaluate.zeroshot_shards(scorer, config.eval_shards, config.label_field)
    return found


def values(row: dict) -> dict[str, float]:
    """A row's metrics by column title (empty when the recipe trained nothing)."""
    found = {}
    if "retrieval" in row:
        short = {"image_to_text": "I→T", "text_to_image": "T→I"}
        for way, k in METRICS:
            found[f"{short[way]} {k}"] = row["retrieval"][way][k]
    if "zeroshot" in row:
        found["zero-shot top-1"] = row["zeroshot"]["top1"]
    return found


def table(result: dict) -> str:
    """The comparison as a markdown table, notes below."""
    columns = sorted({c for row in result["rows"] for c in values(row)}, key=_column_order)
    c = result["config"]
    lines = [
        f"Budget: {c['samples']} samples seen, model {c['model']}, batch {c['batch_size']}, "
        f"seed {c['seed']}; evaluated on {c['eval_shards']}",
        "",
        "| recipe | kept | " + " | ".join(columns) + " |",
        "|---|---:|" + "---:|" * len(columns),
    ]
    for row in result["rows"]:
        v = values(row)
        cells = [f"{v[col]:.3f}" if col in v else "–" for col in columns]
        lines.append(f"| {row['recipe']} | {row['kept']} | " + " | ".join(cells) + " |")
    notes = [f"- {row['recipe']}: {note}" for row in result["rows"] for note in row["notes"]]
    return "\n".join(lines + ([""] + notes if notes else [])) + "\n"


def _column_order(column: str) -> tuple:
    order = [f"{w} {k}" for w in ("I→T", "T→I") for k in ("R@1", "R@5", "R@10")]
    return (order.index(column) if column in order else len(order), column)


def plot(result: dict, path: Path) -> None:
    """Grouped bars: one group per metric, one bar per recipe."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    rows = [r for r in result["rows"] if values(r)]
    columns = sorted({c for r in rows for c in values(r)}, key=_column_order)
    fig = Figure(figsize=(max(6, 1.2 * len(columns)), 3.6), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / max(1, len(rows))
    for i, row in enumerate(rows):
        v = values(row)
        xs = [j + i * width for j in range(len(columns))]
        ax.bar(xs, [v.get(c, 0) for c in columns], width, label=f"{row['recipe']} ({row['kept']})")
    ax.set_xticks([j + width * (len(rows) - 1) / 2 for j in range(len(columns))], columns)
    ax.set_ylim(0, 1)
    ax.set_ylabel("score")
    ax.set_title(f"same model, same budget ({result['config']['samples']} samples seen)")
    ax.legend(title="recipe (kept)")
    fig.savefig(path, dpi=100)
