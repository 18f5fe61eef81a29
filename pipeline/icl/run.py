"""``curate eval icl`` as library calls: where the episodes come from (:class:`EpisodeSource`),
which sets are drawn (:class:`GridConfig`, the columns of Frozen's table), which in-context
learners answer them (:class:`ModelsConfig`), and the files a run writes (:func:`write_run`)."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from vlcurate.pipeline.config import Config
from vlcurate.pipeline.icl.episodes import NAMES, check_nonsense_ways, read_jsonl, write_jsonl
from vlcurate.pipeline.icl.evaluate import episode_grid, evaluate, group_episodes, write_results

ICL_MODELS = ("frozen", "blind", "clip-prototype", "chance", "oracle")
BASELINES = ("blind", "clip-prototype", "chance")  # reported beside the frozen model
INDUCTIONS = {"both": (False, True), "on": (True,), "off": (False,)}
FROZEN_OWN = "frozen"  # clip_pretrained's default: the frozen model's own vision weights


@dataclass
class EpisodeSource(Config):
    """One of: labelled ``shards`` (with ``label_field``), a class-per-subfolder ``folder``,
    Frozen's released tasks in ``frozen_tasks``, or saved ``episodes`` (a jsonl file)."""

    section: ClassVar[str] = "icl"
    shards: str | None = None
    folder: str | None = None
    frozen_tasks: str | None = None
    episodes: str | None = None
    label_field: str | None = None


@dataclass
class GridConfig(Config):
    """Which sets of episodes are drawn from shards or a folder: every combination."""

    section: ClassVar[str] = "icl"
    ways: list[int] = field(
        default_factory=lambda: [2, 5],
        metadata={"help": "classes per episode, one column set each", "min": 2, "nargs": "+"},
    )
    shots: list[int] = field(
        default_factory=lambda: [1, 3, 5],
        metadata={"help": "support images per class (inner shots)", "min": 1, "nargs": "+"},
    )
    repeats: list[int] = field(
        default_factory=lambda: [0],
        metadata={
            "help": "extra showings of the support set",
            "min": 0,
            "max": 5,
            "nargs": "+",
        },
    )
    induction: str = field(
        default="both",
        metadata={
            "help": "task-induction sentence first: both settings, on or off",
            "choices": tuple(INDUCTIONS),
        },
    )
    episodes_per_set: int = field(
        default=100, metadata={"help": "episodes drawn per column", "min": 1}
    )
    names: str = field(
        default="nonsense",
        metadata={"help": "bind classes to nonsense words or their real labels", "choices": NAMES},
    )
    seed: int = field(
        default=0, metadata={"help": "episode seed; also the chance model's seed", "min": 0}
    )
    fast_vqa: str | None = field(
        default=None,
        metadata={
            "help": "fast-VQA episodes: after the named support set, ask for this attribute "
            "of the named object (e.g. color, with --shards and a .json field of that "
            "name; the mini web's scenes have color and kind)",
            "metavar": "ATTRIBUTE",
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_nonsense_ways(self.section, self.ways, self.names)


@dataclass
class ModelsConfig(Config):
    """Which in-context learners answer the episodes, and where they run."""

    section: ClassVar[str] = "icl"
    models: list[str] = field(
        default_factory=lambda: ["clip-prototype", "chance"],
        metadata={
            "help": "models to run: frozen (needs --frozen), blind (the same LM without the "
            "images), clip-prototype, chance, oracle (a harness check)",
            "choices": ICL_MODELS,
            "nargs": "+",
        },
    )
    frozen: str | None = field(
        default=None,
        metadata={
            "help": "for frozen: the weights of `curate train frozen` (OUTPUT/final.pt); the "
            "blind, clip-prototype (on the frozen model's CLIP unless --clip-model is given) "
            "and chance baselines are then added",
            "metavar": "FINAL.pt",
        },
    )
    baselines: bool = field(
        default=True,
        metadata={"help": "with frozen: add the baselines (--no-baselines: only --models)"},
    )
    lm: str = field(
        default="smollm2",
        metadata={
            "help": "for blind without --frozen: the causal LM (smollm2, a Hugging Face name "
            "or folder); with --frozen, blind uses the frozen model's LM"
        },
    )
    clip_model: str | None = field(
        default=None,
        metadata={
            "help": "for clip-prototype: open_clip model name or shipped config (tiny-clip); "
            "default with --frozen: the frozen model's"
        },
    )
    clip_pretrained: str | None = field(
        default=FROZEN_OWN,
        metadata={
            "help": "for clip-prototype: open_clip tag, weights file, miniweb, or none for "
            "random; frozen: the frozen model's (with --frozen and no --clip-model)",
            "weights": True,
        },
    )
    device: str = field(default="auto", metadata={"help": "cpu, cuda, cuda:N or auto"})
    batch_size: int = field(default=64, metadata={"help": "images per CLIP batch", "min": 1})


def episode_sets(source: EpisodeSource, grid: GridConfig) -> tuple[dict[str, list], list[str]]:
    """The episode sets of the source (saved or released episodes as they are, else drawn by
    the grid) and notes on what was skipped."""
    from vlcurate.pipeline.icl import sources

    if source.episodes:
        return group_episodes(read_jsonl(source.episodes)), []
    if source.frozen_tasks:
        from vlcurate.pipeline.icl.frozen_tasks import frozen_episodes

        episodes, notes = frozen_episodes(source.frozen_tasks)
        return group_episodes(episodes), notes
    if source.shards:
        if not source.label_field:
            raise ValueError("--shards needs --label-field (the .json field holding the class)")
        from vlcurate.pipeline.storage import expand_shards

        attributes = [grid.fast_vqa] if grid.fast_vqa else []
        urls = expand_shards(source.shards)
        items = sources.shard_source(urls, source.label_field, attributes)
    else:
        items = sources.folder_source(source.folder)
    return episode_grid(
        items,
        ways=grid.ways,
        inductions=INDUCTIONS[grid.induction],
        shots=grid.shots,
        repeats=grid.repeats,
        episodes=grid.episodes_per_set,
        seed=grid.seed,
        names=grid.names,
        fast_vqa=grid.fast_vqa,
    )


def _prototype_clip(config: ModelsConfig, frozen) -> tuple[str, str | None]:
    """The CLIP of the prototype baseline: the one named, else the frozen model's own."""
    model, pretrained = config.clip_model, config.clip_pretrained
    if frozen is not None and not model:
        model = frozen.config.clip_model
        if pretrained == FROZEN_OWN:
            pretrained = frozen.config.clip_pretrained
    if not model or pretrained == FROZEN_OWN:
        raise ValueError("clip-prototype needs --clip-model and --clip-pretrained")
    return model, pretrained


def _model(name: str, config: ModelsConfig, seed: int, frozen):
    from vlcurate.pipeline.devices import resolve_device
    from vlcurate.pipeline.icl import models

    device = resolve_device(config.device)
    if name in ("frozen", "blind"):
        from vlcurate.pipeline.icl.frozen import BlindICL, FrozenICL, PrefixLM
        from vlcurate.pipeline.icl.lm import load_causal_lm

        if name == "frozen":
            return FrozenICL(frozen)
        return BlindICL(frozen.lm if frozen else PrefixLM(*load_causal_lm(config.lm, device)))
    if name == "oracle":
        return models.Oracle()
    if name == "chance":
        return models.Chance(seed)
    from vlcurate.pipeline.score.clip import ClipScorer

    clip_model, pretrained = _prototype_clip(config, frozen)
    scorer = ClipScorer(model=clip_model, pretrained=pretrained, device=device)
    return models.ClipPrototype(scorer, config.batch_size)


def build_models(config: ModelsConfig, seed: int) -> list:
    """The models named (once each, in order); with the frozen model, its baselines too.
    ``seed`` is the chance model's."""
    names = list(dict.fromkeys(config.models))
    frozen = None
    if "frozen" in names:
        if not config.frozen:
            raise ValueError("the frozen model needs --frozen (OUTPUT/final.pt of train frozen)")
        from vlcurate.pipeline.devices import resolve_device
        from vlcurate.pipeline.icl.frozen import FrozenModel

        frozen = FrozenModel.load(config.frozen, device=resolve_device(config.device))
        if config.baselines:  # Frozen's model is always reported beside its baselines
            names += [b for b in BASELINES if b not in names]
    return [_model(name, config, seed, frozen) for name in names]


def run_icl(
    source: EpisodeSource,
    grid: GridConfig,
    models: ModelsConfig,
    predictions: bool = False,
    progress: bool = True,
) -> tuple[dict, dict]:
    """Build (or read) the episode sets and evaluate the models: ``(results, sets)``;
    ``results["notes"]`` says what was skipped."""
    sets, notes = episode_sets(source, grid)
    if not sets:
        raise ValueError("no episode set could be built: " + "; ".join(notes))
    learners = build_models(models, grid.seed)
    results = evaluate(learners, sets, predictions=predictions, progress=progress)
    results["notes"] = notes
    return results, sets


def write_run(results: dict, sets: dict, folder, predictions: bool = False) -> dict[str, str]:
    """``icl.md``, ``icl.json`` (and ``predictions.jsonl``) and ``episodes.jsonl`` in ``folder``;
    returns the paths by kind."""
    paths = write_results(results, folder, predictions=predictions)
    paths["episodes"] = str(Path(folder) / "episodes.jsonl")
    write_jsonl((e for episodes in sets.values() for e in episodes), paths["episodes"])
    return paths
