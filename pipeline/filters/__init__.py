"""Caption and URL filters. Importing this package registers every filter by its recipe name."""

from vlcurate.pipeline.filters import cc3m, hypernym, language, metaclip, sentiment, text, url  # noqa: F401
from vlcurate.pipeline.filters.base import REGISTRY, Filter

__all__ = ["REGISTRY", "Filter"]
