"""What every filter is: a typed configuration (a dataclass, loaded from a recipe) and one
method that looks at a batch of rows and says, per row, why it is rejected (or ``None``).

Filters work on Arrow tables, not one row at a time, so cheap rules run as pyarrow compute
kernels and model-backed rules batch their model calls.
"""

from typing import ClassVar

import pyarrow as pa

from vlcurate.pipeline.verdict import Verdict, first_reason  # noqa: F401 (re-exported)

REGISTRY: dict[str, type["Filter"]] = {}


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
