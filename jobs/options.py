"""Typed configuration <-> command-line flags: every dataclass field becomes ``--field-name``
with its help text and allowed range, so library code receives a dataclass and never an
argparse namespace. A setting out of range ends the command before any work: one line
``error: ...`` on stderr and exit code 2 (:func:`config_from_args`, :func:`config_from_layers`).

Field metadata read here besides the :mod:`~vlcurate.pipeline.config` checks (``help``,
``min``, ``max``, ``above``, ``choices``): ``nargs`` for a list flag (default ``*``),
``metavar``, and ``weights``: the flag names model weights, so ``none``, ``null``, ``random``
or an empty value give None (random weights). A field without a default is a required flag.
"""

import argparse
import dataclasses
import sys
import types

from vlcurate.pipeline.config import ConfigError

NO_WEIGHTS = ("none", "null", "", "random")  # what --pretrained-style flags take for None


def weights_or_none(value: str | None) -> str | None:
    """A weights flag's value, or None for random weights (``none``, ``null``, ``random``)."""
    return None if value is None or str(value).lower() in NO_WEIGHTS else value


def _value_type(annotation):
    """``str | None`` -> ``str``, ``str | list[str]`` -> ``str``: the type a flag's text
    converts to."""
    args = [a for a in getattr(annotation, "__args__", ()) if a is not type(None)]
    if isinstance(annotation, types.UnionType) and (len(args) == 1 or str in args):
        return args[0] if len(args) == 1 else str
    return annotation


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _default(f: dataclasses.Field):
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def allowed_text(meta) -> str:
    """What a field's metadata allows, for its help: ``>= 1``, ``> 0 and <= 1``, ``one of a, b``."""
    bounds = [f"{sign} {meta[key]}" for key, sign in (("min", ">="), ("above", ">")) if key in meta]
    bounds += [f"<= {meta['max']}"] if "max" in meta else []
    if "at_most" in meta:
        bounds.append(f"<= {meta['at_most'].replace('_', '-')}")
    if "choices" in meta:
        bounds.append("one of " + ", ".join(map(str, meta["choices"])))
    return " and ".join(bounds)


def _help(f: dataclasses.Field) -> str:
    shown = "required" if _required(f) else f"default: {_default(f)}"
    allowed = allowed_text(f.metadata)
    text = f"{f.metadata.get('help', '')} ({shown}{'; ' + allowed if allowed else ''})"
    return text.replace("%", "%%")


def _flag_kwargs(f: dataclasses.Field) -> dict:
    """How argparse reads the field: a switch, a list, or one value."""
    meta = f.metadata
    if f.type is bool:
        return {"action": argparse.BooleanOptionalAction}
    if getattr(f.type, "__origin__", None) is list:
        (item,) = f.type.__args__
        if meta.get("repeatable"):  # --flag A --flag B (and --flag A B) add up
            return {"type": item, "nargs": "+", "action": "extend", "metavar": meta["metavar"]}
        return {"type": item, "nargs": meta.get("nargs", "*"), "metavar": meta.get("metavar", "X")}
    kind = weights_or_none if meta.get("weights") else _value_type(f.type)
    metavar = meta.get("metavar", "N" if kind in (int, float) else None)
    return {"type": kind, "metavar": metavar}


def add_config_flags(
    parser: argparse.ArgumentParser, config_cls, prefix: str = "", layered: bool = False
) -> None:
    """``layered``: flags the user did not give are left out of the namespace, so they can be
    laid over other settings (a recipe's) with :func:`config_from_layers`."""
    group = parser.add_argument_group(f"{config_cls.__name__} options")
    for f in dataclasses.fields(config_cls):
        kwargs = _flag_kwargs(f)
        if _required(f):
            kwargs["required"] = True
        else:
            kwargs["default"] = argparse.SUPPRESS if layered else _default(f)
        flag = "--" + prefix + f.name.replace("_", "-")
        group.add_argument(flag, dest=f.name, help=_help(f), **kwargs)


def _build(config_cls, settings: dict):
    """The config, or one line ``error: ...`` on stderr and exit code 2."""
    try:
        return config_cls(**settings)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def config_from_args(config_cls, args: argparse.Namespace):
    """The config of the parsed flags; a value out of range exits with code 2."""
    return _build(
        config_cls, {f.name: getattr(args, f.name) for f in dataclasses.fields(config_cls)}
    )


def config_from_layers(config_cls, *layers: dict, args: argparse.Namespace):
    """Defaults, then each layer (e.g. a recipe's section), then the flags the user gave; a
    value out of range exits with code 2."""
    names = {f.name for f in dataclasses.fields(config_cls)}
    settings = {}
    for layer in layers:
        settings.update(layer)
    settings.update({k: v for k, v in vars(args).items() if k in names})
    return _build(config_cls, settings)
