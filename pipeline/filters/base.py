"""What every filter is: a typed configuration (a dataclass, loaded from a recipe) and one
method that looks at a batch of rows and says, per row, why it is rejected (or ``None``).

Filters work on Arrow tables, not one row at a time, so cheap rules run as pyarrow compute
kernels and model-backed rules batch their model calls.
"""

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pyarrow as pa

REGISTRY: dict[str, type["Filter"]] = {}


@dataclass
class Verdict:
    """Per-row reasons (``None`` = passes) and, optionally, columns the filter computed
    (``language``, or a rewritten ``caption``), aligned with the rows it was given."""

    reasons: np.ndarray  # object array of str | None
    columns: dict[str, pa.Array] = dataclasses.field(default_factory=dict)


class Filter:
    """Subclasses are dataclasses whose fields are the recipe's parameters."""

    name: ClassVar[str]  # the key used in recipes
    reasons: ClassVar[tuple[str, ...]]  # every reason this filter can return

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            REGISTRY[cls.name] = cls

    def judge(self, table: pa.Table) -> Verdict:
        raise NotImplementedError

    def setup(self) -> None:
        """Load models or word lists; called once per worker before the first batch."""


def first_reason(n: int, *rules: tuple[str, np.ndarray | pa.Array]) -> np.ndarray:
    """Combine boolean masks into reasons: each row gets the first reason whose mask is true.
    Null mask entries count as false."""
    out = np.full(n, None, dtype=object)
    for reason, mask in rules:
        if isinstance(mask, pa.ChunkedArray | pa.Array):
            mask = mask.fill_null(False).to_numpy(zero_copy_only=False)
        out[(out == None) & mask] = reason  # noqa: E711 (elementwise comparison)
    return out
