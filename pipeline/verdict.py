"""The one filter protocol: a batch in, a :class:`Verdict` out.

Every rule that keeps or drops things, whatever it looks at (caption rules over Arrow tables,
OBELICS node and document rules, mmc4-core, select's thresholds), has one method
``judge(batch) -> Verdict``: one reason per item (``None``: kept) and, optionally, columns it
computed (``language``, a rewritten ``caption``), aligned with the batch. Reasons are module
constants that tests assert on, named for what is wrong (``too_few_stopwords``, never the
opposite).
"""

import dataclasses
from dataclasses import dataclass

import numpy as np
import pyarrow as pa


@dataclass
class Verdict:
    """Per-item reasons (an object array of ``str | None``) and computed columns."""

    reasons: np.ndarray
    columns: dict[str, pa.Array] = dataclasses.field(default_factory=dict)

    @property
    def keep(self) -> np.ndarray:
        """True where the item passes."""
        return self.reasons == None  # noqa: E711 (elementwise)

    def __len__(self) -> int:
        return len(self.reasons)

    @classmethod
    def of(cls, reasons, **columns) -> "Verdict":
        return cls(np.array(list(reasons), dtype=object), columns)


def first_reason(n: int, *rules: tuple[str, np.ndarray | pa.Array]) -> np.ndarray:
    """Combine boolean masks into reasons: each item gets the first reason whose mask is true.
    Null mask entries count as false."""
    out = np.full(n, None, dtype=object)
    for reason, mask in rules:
        if isinstance(mask, pa.ChunkedArray | pa.Array):
            mask = mask.fill_null(False).to_numpy(zero_copy_only=False)
        out[(out == None) & mask] = reason  # noqa: E711 (elementwise comparison)
    return out
