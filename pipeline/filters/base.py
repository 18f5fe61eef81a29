"""What every filter is: a typed configuration (a :class:`~vlcurate.pipeline.config.Config`
dataclass whose fields are the recipe's parameters, each with its type and range) and one
method, ``judge(table) -> Verdict``, the one filter protocol of :mod:`vlcurate.pipeline.verdict`.

Filters work on Arrow tables, not one row at a time, so cheap rules run as pyarrow compute
kernels and model-backed rules batch their model calls.
"""

from typing import ClassVar

import pyarrow as pa

from vlcurate.pipeline.config import Config
from vlcurate.pipeline.verdict import Verdict

REGISTRY: dict[str, type["Filter"]] = {}


class Filter(Config):
    """Subclasses are dataclasses whose fields are the recipe's parameters; a bad value fails
    when the rule is made, naming it: ``filters.char_length.min: ...``."""

    name: ClassVar[str]  # the key used in recipes
    reasons: ClassVar[tuple[str, ...]]  # every reason this filter can return
    once: ClassVar[bool] = False  # at most once in a recipe (a corpus-wide step)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            REGISTRY[cls.name] = cls
            cls.section = f"filters.{cls.name}"

    def judge(self, table: pa.Table) -> Verdict:
        raise NotImplementedError

    def setup(self) -> None:
        """Load models or word lists; called once per worker before the first batch."""
