"""The download stage's input: the filter stage's candidates (any table with string ``url`` and
``caption`` columns), read and checked before any work, and the recipe they name."""

import dataclasses

import pyarrow as pa

from vlcurate.pipeline import storage
from vlcurate.pipeline.download.shards import STAGE
from vlcurate.pipeline.recipe import bundled_recipes, load_recipe

REQUIRED = {"url": pa.string(), "caption": pa.string()}


class CandidatesError(storage.InputError):
    """A candidates table the stage cannot read (a missing or mistyped column): raised before
    any work, naming the column."""


def read_candidates(url: str) -> pa.Table:
    """The filter stage's output folder (its ``pairs/``), a folder of parquet, or one file."""
    path = storage.absolute(url)
    inner = storage.join(path, "pairs")
    return storage.read_table(inner if storage.exists(inner) else path)


def checked_candidates(candidates: pa.Table) -> pa.Table:
    """``candidates``, or an empty table of the required columns where a recipe dropped
    everything and the input has no columns at all; CandidatesError for a wrong table."""
    if candidates.num_rows == 0 and not set(REQUIRED) <= set(candidates.schema.names):
        return pa.table({name: pa.array([], kind) for name, kind in REQUIRED.items()})
    for name, kind in REQUIRED.items():
        if name not in candidates.schema.names:
            raise CandidatesError(f"{STAGE}: the candidates have no {name!r} column")
        found = candidates.schema.field(name).type
        if not pa.types.is_string(found):
            raise CandidatesError(f"{STAGE}: the {name!r} column holds {found}, not {kind}")
    return candidates


def recipe_download_settings(name: str | None, candidates: pa.Table) -> dict:
    """The download section of ``name``, or of the bundled recipe the candidates came from, as
    a layer of settings (every field); ``{}`` where there is no such recipe."""
    if name is None and "recipe" in candidates.schema.names and candidates.num_rows:
        named = candidates.column("recipe")[0].as_py().split("/", 1)[0]
        name = named if named in bundled_recipes() else None
    return dataclasses.asdict(load_recipe(name).download) if name else {}
