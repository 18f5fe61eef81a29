"""Run in-context learners over sets of episodes and report Frozen-style tables.

A *set* is one column of Frozen's tables, e.g. ``"2-way, induction, 1 shot, 0 repeats"``: the
episodes of one setting. :func:`episode_grid` builds the sets of a grid of settings from a source,
:func:`evaluate` runs every model on every set (accuracy = exact match after normalisation, with
a 95% Wilson interval over episodes), :func:`frozen_table` renders the markdown table and
:func:`write_results` writes ``icl.md``, ``icl.json`` and optionally ``predictions.jsonl``.
"""

import itertools
import json
import math
import time
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

from vlcurate.pipeline.icl.episodes import Episode, EpisodeConfig, build_episodes, exact_match

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile


def wilson_interval(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for ``correct`` successes in ``n`` trials (95% by default).

    ``centre = (p + z²/2n) / (1 + z²/n)``, ``half = z / (1 + z²/n) * sqrt(p(1-p)/n + z²/4n²)``
    with ``p = correct / n``. Unlike the normal (Wald) interval it stays inside [0, 1] and is not
    empty at 0% or 100%, which matters for a hundred episodes. ``n = 0`` gives ``(0, 1)``."""
    if n <= 0:
        return 0.0, 1.0
    p = correct / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    lo = 0.0 if correct == 0 else max(0.0, centre - half)  # exact at the ends (no rounding)
    hi = 1.0 if correct == n else min(1.0, centre + half)
    return lo, hi


def set_name(settings: dict) -> str:
    """The column name of a setting: ``"2-way, induction, 3 shots, 0 repeats"`` (``", fast-VQA"``
    appended for fast-VQA, ``", real names"`` for real names)."""
    shots = settings.get("inner_shots", 1)
    name = (
        f"{settings.get('ways')}-way, "
        f"{'induction' if settings.get('task_induction') else 'no induction'}, "
        f"{shots} shot{'' if shots == 1 else 's'}, {settings.get('repeats', 0)} repeats"
    )
    if settings.get("fast_vqa"):
        name += ", fast-VQA"
    if settings.get("names") == "real":
        name += ", real names"
    return name


def group_episodes(episodes: Iterable[Episode]) -> dict[str, list[Episode]]:
    """Saved episodes -> sets by :func:`set_name` of their settings, in order of appearance."""
    sets: dict[str, list[Episode]] = {}
    for episode in episodes:
        sets.setdefault(set_name(episode.settings), []).append(episode)
    return sets


def episode_grid(
    items: Iterable[dict],
    ways: Iterable[int] = (2, 5),
    inductions: Iterable[bool] = (False, True),
    shots: Iterable[int] = (1, 3, 5),
    repeats: Iterable[int] = (0,),
    episodes: int = 100,
    seed: int = 0,
    names: str = "nonsense",
    fast_vqa: str | None = None,
) -> tuple[dict[str, list[Episode]], list[str]]:
    """The sets of every combination of the settings, drawn from ``items`` (read once).

    Returns ``(sets, notes)``: ``sets`` maps :func:`set_name` to its episodes (ways, then
    induction, shots and repeats, in the given orders); a combination the source cannot support
    (too few classes with ``shots + 1`` images) is skipped and explained in ``notes``.
    ``fast_vqa``: an attribute (e.g. ``"color"``) to ask about instead of the name (fast-VQA
    episodes; only items whose ``attributes`` have it)."""
    items = list(items)
    sets: dict[str, list[Episode]] = {}
    notes: list[str] = []
    for w, induction, s, r in itertools.product(ways, inductions, shots, repeats):
        config = EpisodeConfig(
            ways=w,
            names=names,
            task_induction=induction,
            inner_shots=s,
            repeats=r,
            episodes=episodes,
            seed=seed,
            fast_vqa=fast_vqa is not None,
            attribute=fast_vqa or "color",
        )
        key = set_name(asdict(config))
        try:
            sets[key] = build_episodes(items, config)
        except ValueError as e:
            notes.append(f"skipped {key}: {e}")
    return sets, notes


def _set_result(correct: int, n: int) -> dict:
    lo, hi = wilson_interval(correct, n)
    return {
        "correct": correct,
        "n": n,
        "accuracy": correct / n if n else None,
        "ci95": [lo, hi],
        "half_width": (hi - lo) / 2,
    }


def _answer_set(model, key: str, episodes: list[Episode], rows: list | None, bar) -> dict:
    """``model`` on one set: its result, and (with ``rows``) one prediction row per episode."""
    correct = 0
    for episode in episodes:
        prediction = model.answer(episode)
        hit = exact_match(prediction, episode.answer)
        correct += hit
        if rows is not None:
            rows.append(
                {
                    "model": model.name,
                    "set": key,
                    "episode": episode.id,
                    "prediction": prediction,
                    "answer": episode.answer,
                    "correct": hit,
                }
            )
        bar.update(1)
    return _set_result(correct, len(episodes))


def evaluate(
    models,
    episode_sets: dict[str, list[Episode]],
    predictions: bool = False,
    progress: bool = False,
) -> dict:
    """Every model's ``answer`` on every episode of every set.

    Returns ``{"models": [names], "sets": [set names], "n": {set: episodes},
    "results": {model: {set: {"correct", "n", "accuracy", "ci95": [lo, hi], "half_width"}}}}``
    and, with ``predictions``, ``"predictions"``: one dict per model and episode
    (``model, set, episode, prediction, answer, correct``). ``accuracy`` is the share of exact
    matches after :func:`~vlcurate.pipeline.icl.episodes.normalise` (``None`` for an empty set);
    ``ci95`` is the 95% Wilson interval (:func:`wilson_interval`) and ``half_width`` half its
    width (the interval is not symmetric about the accuracy near 0 or 1). ``speed`` holds each
    model's ``seconds`` and ``episodes_per_s`` (answering only; loading the model is not in it)."""
    from tqdm import tqdm

    models = list(models)
    out: dict = {
        "models": [m.name for m in models],
        "sets": list(episode_sets),
        "n": {k: len(v) for k, v in episode_sets.items()},
        "results": {},
        "speed": {},
    }
    rows = [] if predictions else None
    total = sum(out["n"].values())
    for model in models:
        per_set = out["results"].setdefault(model.name, {})
        started = time.perf_counter()
        bar = tqdm(total=total, desc=f"icl {model.name}", disable=not progress, unit="episode")
        for key, episodes in episode_sets.items():
            per_set[key] = _answer_set(model, key, episodes, rows, bar)
        bar.close()
        seconds = time.perf_counter() - started
        out["speed"][model.name] = {
            "seconds": seconds,
            "episodes_per_s": total / seconds if seconds > 0 else None,
        }
    if predictions:
        out["predictions"] = rows
    return out


def frozen_table(results: dict) -> str:
    """Markdown: one row per model, one column per set, cells ``"acc ± half-width"`` in percent
    (the 95% Wilson interval's half width); a last row gives the episodes per set."""
    sets = results["sets"]
    lines = [
        "| model | " + " | ".join(sets) + " |",
        "|---|" + "---:|" * len(sets),
    ]
    for model in results["models"]:
        cells = []
        for key in sets:
            r = results["results"][model].get(key)
            if r is None or r["accuracy"] is None:
                cells.append("-")
            else:
                cells.append(f"{100 * r['accuracy']:.1f} ± {100 * r['half_width']:.1f}")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    lines.append("| n | " + " | ".join(str(results["n"][k]) for k in sets) + " |")
    return "\n".join(lines)


def speed_line(results: dict) -> str:
    """``"episodes/s: frozen 3.1, chance 51000"``: answering speed per model."""
    parts = []
    for model, speed in results.get("speed", {}).items():
        rate = speed.get("episodes_per_s")
        parts.append(f"{model} {rate:.3g}" if rate else f"{model} -")
    return "episodes/s: " + ", ".join(parts)


def write_results(results: dict, folder, predictions: bool = False) -> dict[str, str]:
    """``folder/icl.md`` (the table), ``folder/icl.json`` (the results without predictions) and,
    with ``predictions`` (and predictions in the results), ``folder/predictions.jsonl``.
    Returns the paths written, by kind."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"table": str(folder / "icl.md"), "results": str(folder / "icl.json")}
    Path(paths["table"]).write_text(frozen_table(results) + "\n")
    summary = {k: v for k, v in results.items() if k != "predictions"}
    Path(paths["results"]).write_text(json.dumps(summary, indent=2) + "\n")
    if predictions and "predictions" in results:
        paths["predictions"] = str(folder / "predictions.jsonl")
        with open(paths["predictions"], "w") as f:
            for row in results["predictions"]:
                f.write(json.dumps(row) + "\n")
    return paths
