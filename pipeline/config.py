"""Typed settings that check themselves: a stage's config is a dataclass deriving from
:class:`Config`, and every field says its type (the annotation) and its range (metadata).

    batch_size: int = field(default=256, metadata={"help": "images per batch", "min": 1})
    nsfw_max: float | None = field(default=None, metadata={"help": "...", "min": 0, "max": 1})
    faces: str = field(default="haar", metadata={"help": "...", "choices": ("haar", "none")})
    min: int | None = field(default=None, metadata={"min": 0, "at_most": "max"})

Construction checks every field (type, ``min``/``max`` inclusive, ``above`` exclusive,
``choices``, ``at_most`` another field), so a bad value from a recipe, a flag or code fails
before any work, with one line naming the field, the value and what is allowed:
:class:`ConfigError`.
"""

import dataclasses
import types
import typing
from typing import ClassVar


class ConfigError(ValueError):
    """A setting outside its type or range; the message names the field and what is allowed."""


def _allowed_types(annotation) -> tuple[list, bool]:
    """``int | None`` -> ([int], True)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = list(typing.get_args(annotation))
        return [a for a in args if a is not type(None)], type(None) in args
    return [annotation], False


def _type_ok(value, kind) -> bool:
    origin = typing.get_origin(kind)
    if origin in (list, tuple):
        (item, *_) = typing.get_args(kind) or (object,)
        return isinstance(value, list | tuple) and all(_type_ok(v, item) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind in (typing.Any, object):
        return True
    return isinstance(value, kind)


def _type_name(kinds: list, optional: bool) -> str:
    names = []
    for kind in kinds:
        origin = typing.get_origin(kind)
        if origin in (list, tuple):
            (item, *_) = typing.get_args(kind) or (object,)
            plural = {int: "integers", float: "numbers", str: "text", bool: "true or false"}
            names.append(f"a list of {plural.get(item, getattr(item, '__name__', str(item)))}")
        else:
            names.append(
                {int: "an integer", float: "a number", str: "text", bool: "true or false"}.get(
                    kind, getattr(kind, "__name__", str(kind))
                )
            )
    return " or ".join(names + (["null"] if optional else []))


def _range_text(meta: dict) -> str:
    bounds = []
    if "above" in meta:
        bounds.append(f"> {meta['above']}")
    if "min" in meta:
        bounds.append(f">= {meta['min']}")
    if "max" in meta:
        bounds.append(f"<= {meta['max']}")
    return " and ".join(bounds)


def check_field(owner: str, f: dataclasses.Field, value, hints: dict) -> None:
    kinds, optional = _allowed_types(hints[f.name])
    meta = f.metadata
    name = f"{owner}.{f.name}" if owner else f.name
    if value is None:
        if not optional:
            raise ConfigError(f"{name}: null is not allowed ({_type_name(kinds, False)})")
        return
    if not any(_type_ok(value, k) for k in kinds):
        raise ConfigError(f"{name}: {value!r} is not allowed ({_type_name(kinds, optional)})")
    values = value if isinstance(value, list | tuple) else [value]
    for v in values:
        if "choices" in meta and v not in meta["choices"]:
            allowed = ", ".join(map(str, meta["choices"]))
            raise ConfigError(f"{name}: {v!r} is not allowed (one of {allowed})")
        if isinstance(v, int | float) and not isinstance(v, bool):
            low, high, above = meta.get("min"), meta.get("max"), meta.get("above")
            if (
                (low is not None and v < low)
                or (high is not None and v > high)
                or (above is not None and not v > above)
            ):
                what = f"{_type_name(kinds, False)} {_range_text(meta)}"
                what += ", or null" if optional else ""
                raise ConfigError(f"{name}: {v!r} is not allowed ({what})")


class Config:
    """Base of every stage's settings: checks each field when constructed."""

    section: ClassVar[str] = ""  # the recipe section or flag group, for messages

    def __post_init__(self) -> None:
        check(self)


def check(config) -> None:
    hints = typing.get_type_hints(type(config))
    owner = getattr(config, "section", "") or getattr(config, "name", "")
    for f in dataclasses.fields(config):
        check_field(owner, f, getattr(config, f.name), hints)
    for f in dataclasses.fields(config):
        other = f.metadata.get("at_most")
        value, bound = getattr(config, f.name), getattr(config, other, None) if other else None
        if other and value is not None and bound is not None and value > bound:
            name = f"{owner}.{f.name}" if owner else f.name
            raise ConfigError(f"{name}: {value!r} is not allowed (at most {other}, {bound!r})")
