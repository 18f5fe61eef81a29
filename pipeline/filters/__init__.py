"""Caption and URL filters. Importing this package registers every filter by its recipe name."""

from vlcurate.pipeline.filters import cc3m, hypernym, language, text, url  # noqa: F401 (registration)
from vlcurate.pipeline.filters.base import REGISTRY, Filter

__all__ = ["REGISTRY", "Filter"]
