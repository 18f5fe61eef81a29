"""Recipes: YAML files naming the rules of a curation recipe, in order, with their parameters.

    name: datacomp-basic
    version: 1
    source: DataComp, baselines/apply_filter.py (basic filtering)
    filters:
      - char_length: {min: 6}
      - word_count: {min: 3}
      - language: {keep: [en]}
    dedup: {uid: true, max_per_url: null}

Every key and every value is checked before any work starts: an unknown section, filter or
parameter, or a value outside its type or range (``char_length: {min: 50, max: 10}``), raises
:class:`RecipeError`, one line naming the file, the section and the field. Each section
becomes its typed config: the rules (:mod:`vlcurate.pipeline.filters`), ``dedup``
(:class:`~vlcurate.pipeline.filters.dedup.Dedup`), ``download``, ``score``, ``select``,
``docs`` and ``assign``.
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from vlcurate.pipeline.config import ConfigError
from vlcurate.pipeline.docs.config import AssignConfig, DocFilterConfig
from vlcurate.pipeline.download.config import DownloadConfig
from vlcurate.pipeline.filters import REGISTRY, Filter
from vlcurate.pipeline.filters.apply import Rules
from vlcurate.pipeline.filters.dedup import Dedup
from vlcurate.pipeline.filters.text import CaptionValid
from vlcurate.pipeline.score.config import ScoreConfig
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
class Recipe:
    name: str
    version: int
    source: str
    filters: list[Filter]
    dedup: Dedup = field(default_factory=Dedup)
    description: str = ""
    download: DownloadConfig = field(default_factory=DownloadConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    select: SelectConfig = field(default_factory=SelectConfig)
    docs: DocFilterConfig | None = None  # interleaved documents: node, document, image rules
    assign: AssignConfig | None = None  # interleaved documents: images to sentences

    @property
    def ident(self) -> str:
        return f"{self.name}/{self.version}"

    @property
    def rules(self) -> Rules:
        """What the filter stage's units need: the rules and the ident, not the sections."""
        return Rules(list(self.filters), self.ident)


def bundled_recipes() -> list[str]:
    return sorted(p.stem for p in BUNDLED.glob("*.yaml"))


def load_recipe(spec: str) -> Recipe:
    """A bundled recipe by name (``laion``) or a YAML file by path."""
    path = Path(spec)
    if not path.suffix and (BUNDLED / f"{spec}.yaml").exists():
        path = BUNDLED / f"{spec}.yaml"
    if not path.is_file():
        raise RecipeError(
            f"no recipe {spec!r}: not a file, nor one of {', '.join(bundled_recipes())}"
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise RecipeError(f"{path}: not valid YAML{at}: {problem}") from None
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
    entries = data["filters"] or []
    if not isinstance(entries, list):
        raise RecipeError(f"{where}: filters: write a list of `- name: {{param: value}}`")
    filters = [_make_filter(entry, where, i) for i, entry in enumerate(entries)]
    _at_most_once(filters, where)
    if not any(isinstance(f, CaptionValid) for f in filters):
        filters.insert(0, CaptionValid())
    return Recipe(
        name=str(data["name"]),
        version=_version(data["version"], where),
        source=str(data["source"]),
        description=str(data.get("description", "")),
        filters=filters,
        dedup=_make(Dedup, data.get("dedup"), where, "dedup"),
        download=_make(DownloadConfig, data.get("download"), where, "download"),
        score=_make(ScoreConfig, data.get("score"), where, "score"),
        select=_select_options(data.get("select"), where),
        docs=_section(DocFilterConfig, data, "docs", where),
        assign=_section(AssignConfig, data, "assign", where),
    )


def _version(value, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise RecipeError(f"{where}: version: {value!r} is not allowed (an integer)")


def _section(cls, data: dict, key: str, where: str):
    """An optional section as its config class; absent -> None."""
    if key not in data:
        return None
    return _make(cls, data[key], where, key)


def _select_options(params, where: str) -> SelectConfig:
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise RecipeError(f"{where}: select: parameters must be a mapping, got {params!r}")
    params = dict(params)
    dedup = _make(ImageDedup, params.pop("dedup", None), where, "select: dedup")
    return _make(SelectConfig, {**params, "dedup": dedup}, where, "select")


def _at_most_once(filters: list[Filter], where: str) -> None:
    """Refuse a second rule of a kind a recipe has once (``metaclip_balance``)."""
    first: dict[str, int] = {}
    for i, rule in enumerate(filters):
        if rule.once and rule.name in first:
            raise RecipeError(
                f"{where}: filters[{i}] ({rule.name}): given twice (first at "
                f"filters[{first[rule.name]}]); a recipe has at most one"
            )
        first.setdefault(rule.name, i)


def _make_filter(entry, where: str, index: int) -> Filter:
    here = f"{where}: filters[{index}]"
    if isinstance(entry, str):
        entry = {entry: {}}
    if not isinstance(entry, dict) or len(entry) != 1:
        raise RecipeError(f"{here}: write a filter as `- name: {{param: value}}`, got {entry!r}")
    ((name, params),) = entry.items()
    if name not in REGISTRY:
        raise RecipeError(f"{here}: unknown filter {name!r} (known: {', '.join(sorted(REGISTRY))})")
    return _make(REGISTRY[name], params, where, f"filters[{index}] ({name})")


def _make(cls, params, where: str, section: str):
    """``cls(**params)`` from the recipe's ``section`` (``where``: the file); any error is a
    RecipeError of one line naming the section and the field."""
    here = f"{where}: {section}"
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise RecipeError(f"{here}: parameters must be a mapping, got {params!r}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(params) - known
    if unknown:
        raise RecipeError(
            f"{here}: unknown parameter {sorted(unknown)[0]!r} (known: {sorted(known)})"
        )
    try:
        return cls(**params)
    except ConfigError as e:  # it names its own section (filters.char_length.min: ...)
        named = str(e).startswith(f"{getattr(cls, 'section', '') or section}.")
        raise RecipeError(f"{where}: {e}" if named else f"{here}: {e}") from None
    except (TypeError, ValueError) as e:
        raise RecipeError(f"{here}: {e}") from None
