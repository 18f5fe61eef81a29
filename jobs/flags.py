"""Flags laid over a recipe: what `curate run --STAGE-args` gives a stage."""

import argparse
import dataclasses
import shlex


def given_flags(jobs: dict, stage: str, flags: str, docs: bool = False) -> dict:
    """The flags written in ``--STAGE-args``, parsed as `curate STAGE` parses them (on the
    interleaved road, filter's and select's as `curate docs filter|assign`); only those given
    (no defaults), so they lie over the recipe's settings."""
    step = {"filter": "filter", "select": "assign"}.get(stage) if docs else None
    parser = jobs["docs"].build_parser() if step else jobs[stage].build_parser()
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for p in [parser, *(a.choices[step] for a in subparsers if step)]:
        for action in p._actions:
            action.required = False
            if action.dest != "help":
                action.default = argparse.SUPPRESS
    return vars(parser.parse_args(([step] if step else []) + shlex.split(flags)))


def layered(config_cls, section, flags: dict):
    """The recipe's section (a config or None), then the flags given: a checked config."""
    settings = dataclasses.asdict(section) if section is not None else {}
    names = {f.name for f in dataclasses.fields(config_cls)}
    return config_cls(**{**settings, **{k: v for k, v in flags.items() if k in names}})
