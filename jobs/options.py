"""Typed configuration <-> command-line flags: every dataclass field becomes ``--field-name``
with its help text, so library code receives a dataclass and never an argparse namespace."""

import argparse
import dataclasses


def add_config_flags(parser: argparse.ArgumentParser, config_cls) -> None:
    group = parser.add_argument_group(f"{config_cls.__name__} options")
    for f in dataclasses.fields(config_cls):
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata.get('help', '')} (default: {f.default})"
        if f.type in (bool, "bool"):
            group.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=f.default, help=help_text
            )
        else:
            kind = {"int": int, "float": float, "str": str}.get(str(f.type), f.type)
            group.add_argument(
                flag,
                type=kind,
                default=f.default,
                metavar="N" if kind is int else None,
                help=help_text,
            )


def config_from_args(config_cls, args: argparse.Namespace):
    return config_cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(config_cls)})
