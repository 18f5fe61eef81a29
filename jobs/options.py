"""Typed configuration <-> command-line flags: every dataclass field becomes ``--field-name``
with its help text, so library code receives a dataclass and never an argparse namespace."""

import argparse
import dataclasses
import types

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


def _default(f: dataclasses.Field):
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def add_config_flags(
    parser: argparse.ArgumentParser, config_cls, prefix: str = "", layered: bool = False
) -> None:
    """``layered``: flags the user did not give are left out of the namespace, so they can be
    laid over other settings (a recipe's) with :func:`config_from_layers`."""
    group = parser.add_argument_group(f"{config_cls.__name__} options")
    for f in dataclasses.fields(config_cls):
        flag = "--" + prefix + f.name.replace("_", "-")
        shown = _default(f)
        default = argparse.SUPPRESS if layered else shown
        help_text = f"{f.metadata.get('help', '')} (default: {shown})"
        if f.type is bool:
            group.add_argument(
                flag,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=default,
                help=help_text,
            )
        elif getattr(f.type, "__origin__", None) is list:
            (item,) = f.type.__args__
            group.add_argument(
                flag,
                dest=f.name,
                type=item,
                nargs="*",
                default=default,
                metavar="X",
                help=help_text,
            )
        else:
            kind = _value_type(f.type)
            group.add_argument(
                flag,
                dest=f.name,
                type=kind,
                default=default,
                metavar="N" if kind in (int, float) else None,
                help=help_text,
            )


def config_from_args(config_cls, args: argparse.Namespace):
    return config_cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(config_cls)})


def config_from_layers(config_cls, *layers: dict, args: argparse.Namespace):
    """Defaults, then each layer (e.g. a recipe's section), then the flags the user gave."""
    names = {f.name for f in dataclasses.fields(config_cls)}
    settings = {}
    for layer in layers:
        settings.update(layer)
    settings.update({k: v for k, v in vars(args).items() if k in names})
    return config_cls(**settings)
