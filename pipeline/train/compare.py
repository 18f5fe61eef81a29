"""DataComp's loop at small scale: filter one scored pool with each recipe, train the same CLIP
with the same budget on each selection, evaluate every model the same way, side by side.

For each recipe, :func:`compare` runs the select stage on the shared ``shards`` and ``scores``
into ``OUTPUT/NAME/final``, trains :class:`CompareConfig`'s model on those shards into
``OUTPUT/NAME/train`` (same seed, so the same initial weights and the same schedule; only the
data differ), and evaluates ``final.pt`` on ``eval_shards``: retrieval recall@1/5/10 both ways,
and zero-shot accuracy on each of ``label_field``. With ``seeds`` = N it trains N times per
recipe (seeds ``seed`` .. ``seed + N - 1``, into ``train-seedS``) and the table gives each
metric's mean and standard deviation across seeds: a difference smaller than that spread is
not a difference. With ``truth_field`` (a column of the pool shards' parquet sidecars, such as
the noisy pool's ``noise``) each selection's make-up is tallied from the shards' truth. It
writes ``OUTPUT/compare.json``, ``compare.md`` (the table), ``compare.png`` (the plot) and
``report.html`` (both, and the notes).

The budget is samples seen (``samples``), not epochs, as in DataComp: a recipe that keeps
fewer samples sees each of them more often. Training draws shards with replacement either
way; when a selection is smaller than the budget, the result says how many times each sample
is seen on average.
"""

import json
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import ClassVar

import numpy as np

from vlcurate.pipeline.config import Config
from vlcurate.pipeline.recipe import load_recipe
from vlcurate.pipeline.train.compare_report import METRICS, plot, table, values, write_html


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
    seeds: int = field(
        default=1,
        metadata={
            "help": "training runs per recipe (seeds seed .. seed+N-1): mean and spread",
            "min": 1,
        },
    )
    workers: int = field(default=2, metadata={"help": "DataLoader processes", "min": 0})
    device: str = field(default="auto", metadata={"help": "cpu, cuda or auto"})
    label_field: list[str] = field(
        default_factory=list,
        metadata={
            "help": "json fields of eval_shards for zero-shot, one accuracy each (e.g. kind color)",
            "nargs": "+",
            "metavar": "FIELD",
        },
    )
    truth_field: str | None = field(
        default=None,
        metadata={"help": "column of the pool shards' parquet to tally in each selection (noise)"},
    )

    def __post_init__(self):
        if isinstance(self.label_field, str):
            self.label_field = [self.label_field]
        super().__post_init__()


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
        if config.truth_field:
            row["truth"] = truth_tally(shards, final, config.truth_field)
        if stats["kept"] == 0:
            row["notes"].append("kept no sample: nothing to train on")
            rows.append(row)
            continue
        if stats["kept"] < config.samples:
            row["notes"].append(
                f"keeps {stats['kept']} samples, fewer than the budget of {config.samples}: "
                f"resampled, each seen about {config.samples / stats['kept']:.1f} times"
            )
        runs = []
        for seed in range(config.seed, config.seed + config.seeds):
            run = out / name / ("train" if config.seeds == 1 else f"train-seed{seed}")
            found = _train_and_evaluate(final, run, replace(config, seed=seed), progress)
            runs.append({"seed": seed, **found})
        row.update(summarise(runs))
        rows.append(row)
    result = {"config": asdict(config), "recipes": recipes, "rows": rows}
    (out / "compare.json").write_text(json.dumps(result, indent=1))
    (out / "compare.md").write_text(table(result))
    plot(result, out / "compare.png")
    write_html(result, out / "report.html", out / "compare.png")
    return result


def summarise(runs: list[dict]) -> dict:
    """One recipe's row from its runs: each metric's mean across seeds where the single run's
    value was (``retrieval``, ``zeroshot``), its standard deviation in ``spread`` (by column
    title; 0 for one run), and the runs themselves."""
    row = {
        "runs": runs,
        "steps": runs[0]["steps"],
        "loss": float(np.mean([r["loss"] for r in runs])),
    }
    ways = [w for w, _ in METRICS]
    row["retrieval"] = {
        way: {
            k: float(np.mean([r["retrieval"][way][k] for r in runs]))
            for w, k in METRICS
            if w == way
        }
        for way in dict.fromkeys(ways)
    }
    row["retrieval"]["n"] = runs[0]["retrieval"]["n"]
    if "zeroshot" in runs[0]:
        row["zeroshot"] = {
            f: {"top1": float(np.mean([r["zeroshot"][f]["top1"] for r in runs]))}
            for f in runs[0]["zeroshot"]
        }
    per_run = [values(r) for r in runs]
    row["spread"] = {
        col: float(np.std([v[col] for v in per_run], ddof=1)) if len(runs) > 1 else 0.0
        for col in per_run[0]
    }
    return row


def truth_tally(shards: str, final: Path, field_name: str) -> dict[str, int]:
    """How many of a selection's samples have each value of ``field_name``, a column of the
    pool shards' parquet sidecars (joined on the final shards' ``source_shard``/``source_key``)."""
    import pyarrow.parquet as pq

    from vlcurate.pipeline import storage

    tally: Counter = Counter()
    truth: dict[str, dict] = {}
    for part in sorted(final.glob("[0-9]*.parquet")):  # the final shards, not selection
        picked = pq.read_table(part, columns=["source_shard", "source_key"]).to_pylist()
        for row in picked:
            name = row["source_shard"]
            if name not in truth:
                path = storage.join(shards, f"{name}.parquet")
                t = storage.read_table(path, columns=["key", field_name]).to_pydict()
                truth[name] = dict(zip(t["key"], t[field_name], strict=True))
            tally[str(truth[name].get(row["source_key"]))] += 1
    return dict(tally.most_common())


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
        found["zeroshot"] = {
            name: evaluate.zeroshot_shards(scorer, config.eval_shards, name)
            for name in config.label_field
        }
    return found
