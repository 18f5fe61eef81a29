"""Apply a recipe's rules to Arrow batches: each row gets the first reason, in recipe order,
and the columns the rules computed (language, a rewritten caption)."""

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from vlcurate.pipeline.filters.base import Filter
from vlcurate.schemas.filter import CANDIDATE_SCHEMA

ANNOTATED_SCHEMA = pa.schema(
    [*CANDIDATE_SCHEMA, pa.field("drop_reason", pa.string())],
    metadata=CANDIDATE_SCHEMA.metadata,
)
_COMPUTED = ("language", "language_score", "caption_original")


@dataclass
class Rules:
    """What the filter stage's units need of a recipe (``Recipe.rules``): its caption rules,
    in order, and the ``name/version`` every row is stamped with."""

    filters: list[Filter]
    ident: str


def annotate(table: pa.Table, recipe) -> pa.Table:
    """``table`` has the pair columns; ``recipe`` is a Recipe or its Rules. The result has
    ANNOTATED_SCHEMA (``drop_reason`` is null for rows every rule passed). Each rule only sees
    the rows earlier rules kept, with the captions earlier rules rewrote."""
    n = table.num_rows
    reasons = np.full(n, None, dtype=object)
    computed = {name: np.full(n, None, dtype=object) for name in _COMPUTED}
    captions = None  # full-length captions, once a rule has rewritten any
    alive, current = np.arange(n), table
    for rule in recipe.filters:
        if len(alive) == 0:
            break
        verdict = rule.judge(current)
        rewritten = verdict.columns.get("caption")
        if rewritten is not None:
            if captions is None:
                captions = table.column("caption").to_numpy(zero_copy_only=False).copy()
            old = captions[alive]
            new = rewritten.to_numpy(zero_copy_only=False)
            first = (new != old) & (computed["caption_original"][alive] == None)  # noqa: E711
            computed["caption_original"][alive[first]] = old[first]
            captions[alive] = new
            current = current.set_column(
                current.schema.get_field_index("caption"), "caption", rewritten
            )
        for name, column in verdict.columns.items():
            if name != "caption":
                computed[name][alive] = column.to_numpy(zero_copy_only=False)
        rejected = verdict.reasons != None  # noqa: E711 (elementwise)
        if rejected.any():
            reasons[alive[rejected]] = verdict.reasons[rejected]
            alive = alive[~rejected]
            current = current.filter(pa.array(~rejected))
    columns = {name: table.column(name) for name in table.schema.names}
    if captions is not None:
        columns["caption"] = pa.array(captions, pa.string())
    for name in _COMPUTED:
        columns[name] = pa.array(computed[name], CANDIDATE_SCHEMA.field(name).type)
    columns["recipe"] = pa.array([recipe.ident] * n, pa.string())
    columns["drop_reason"] = pa.array(reasons, pa.string())
    return pa.Table.from_pydict(
        {f.name: columns[f.name] for f in ANNOTATED_SCHEMA}, schema=ANNOTATED_SCHEMA
    )


def annotate_batches(batches, recipe):
    """RecordBatches of pairs in, annotated RecordBatches out (each rule set up first)."""
    for rule in recipe.filters:
        rule.setup()
    for batch in batches:
        if batch.num_rows:
            yield from annotate(pa.Table.from_batches([batch]), recipe).to_batches()
