"""Recipes: YAML files naming the rules of a curation recipe, in order, with their parameters.

    name: datacomp-basic
    version: 1
    source: DataComp, baselines/apply_filter.py (basic filtering)
    filters:
      - char_length: {min: 6}
      - word_count: {min: 3}
      - language: {keep: [en]}
    dedup: {uid: true, max_per_url: null}

Every key is checked before any work starts: an unknown section, filter or parameter raises
:class:`RecipeError` naming it.
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from vlcurate.pipeline.docs.assign import AssignConfig
from vlcurate.pipeline.docs.filters import DocFilterConfig
from vlcurate.pipeline.filters import REGISTRY, Filter
from vlcurate.pipeline.filters.text import CaptionValid
from vlcurate.pipeline.select.config import ImageDedup, SelectConfig

BUNDLED = Path(__file__).resolve().parent.parent / "recipes"
SECTIONS = {
    "name",
    "version",
    "source",
    "description",
    "filters",
    "dedup",
    "download",
    "score",
    "select",
    "docs",
    "assign",
}


class RecipeError(ValueError):
    """A recipe that cannot be used: raised before any work starts."""


@dataclass
class Dedup:
    uid: bool = True  # drop later rows with the same md5(caption + url)
    max_per_url: int | None = 1  # keep at most this many captions per image URL; null: no limit


@dataclass
class Recipe:
    name: str
    version: int
    source: str
    filters: list[Filter]
    dedup: Dedup = field(default_factory=Dedup)
    description: str = ""
    download: dict = field(default_factory=dict)  # DownloadConfig fields: image_size, resize_mode
    score: dict = field(default_factory=dict)  # ScoreConfig fields: model, pretrained, faces, ...
    select: SelectConfig = field(default_factory=SelectConfig)
    docs: DocFilterConfig | None = None  # interleaved documents: node, document, image rules
    assign: AssignConfig | None = None  # interleaved documents: images to sentences

    @property
    def ident(self) -> str:
        return f"{self.name}/{self.version}"


def bundled_recipes() -> list[str]:
    return sorted(p.stem for p in BUNDLED.glob("*.yaml"))


def load_recipe(spec: str) -> Recipe:
    """A bundled recipe by name (``laion``) or a YAML file by path."""
    path = Path(spec)
    if not path.suffix and (BUNDLED / f"{spec}.yaml").exists():
        path = BUNDLED / f"{spec}.yaml"
    if not path.exists():
        raise RecipeError(
            f"no recipe {spec!r}: not a file, nor one of {', '.join(bundled_recipes())}"
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise RecipeError(f"{path}: not valid YAML: {e}") from None
    return parse_recipe(data, str(path))


def parse_recipe(data, where: str = "recipe") -> Recipe:
    if not isinstance(data, dict):
        raise RecipeError(f"{where}: a recipe is a mapping with keys {sorted(SECTIONS)}")
    unknown = set(data) - SECTIONS
    if unknown:
        raise RecipeError(
            f"{where}: unknown key {sorted(unknown)[0]!r} (known: {sorted(SECTIONS)})"
        )
    for key in ("name", "version", "source", "filters"):
        if key not in data:
            raise RecipeError(f"{where}: missing key {key!r}")
    filters = [
        _make_filter(entry, f"{where}: filters[{i}]")
        for i, entry in enumerate(data["filters"] or [])
    ]
    if not any(isinstance(f, CaptionValid) for f in filters):
        filters.insert(0, CaptionValid())
    return Recipe(
        name=str(data["name"]),
        version=int(data["version"]),
        source=str(data["source"]),
        description=str(data.get("description", "")),
        filters=filters,
        dedup=_make(Dedup, data.get("dedup") or {}, f"{where}: dedup"),
        download=_download_options(data.get("download") or {}, f"{where}: download"),
        score=_score_options(data.get("score") or {}, f"{where}: score"),
        select=_select_options(data.get("select") or {}, f"{where}: select"),
        docs=_section(DocFilterConfig, data, "docs", where),
        assign=_section(AssignConfig, data, "assign", where),
    )


def _section(cls, data: dict, key: str, where: str):
    """An optional section as its config class; absent -> None."""
    if key not in data:
        return None
    return _make(cls, data[key] or {}, f"{where}: {key}")


def _score_options(params, where: str) -> dict:
    from vlcurate.pipeline.score.stage import ScoreConfig

    _make(ScoreConfig, params, where)
    return dict(params)


def _select_options(params, where: str) -> SelectConfig:
    if not isinstance(params, dict):
        raise RecipeError(f"{where}: parameters must be a mapping, got {params!r}")
    params = dict(params)
    dedup = _make(ImageDedup, params.pop("dedup", None) or {}, f"{where}: dedup")
    return _make(SelectConfig, {**params, "dedup": dedup}, where)


def _download_options(params, where: str) -> dict:
    from vlcurate.pipeline.download.stage import DownloadConfig

    _make(DownloadConfig, params, where)  # validates names and types now, before any work
    return dict(params)


def _make_filter(entry, where: str) -> Filter:
    if isinstance(entry, str):
        entry = {entry: {}}
    if not isinstance(entry, dict) or len(entry) != 1:
        raise RecipeError(f"{where}: write a filter as `- name: {{param: value}}`, got {entry!r}")
    ((name, params),) = entry.items()
    if name not in REGISTRY:
        raise RecipeError(
            f"{where}: unknown filter {name!r} (known: {', '.join(sorted(REGISTRY))})"
        )
    return _make(REGISTRY[name], params or {}, f"{where} ({name})")


def _make(cls, params, where: str):
    if not isinstance(params, dict):
        raise RecipeError(f"{where}: parameters must be a mapping, got {params!r}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(params) - known
    if unknown:
        raise RecipeError(
            f"{where}: unknown parameter {sorted(unknown)[0]!r} (known: {sorted(known)})"
        )
    try:
        return cls(**params)
    except (TypeError, ValueError) as e:
        raise RecipeError(f"{where}: {e}") from None
