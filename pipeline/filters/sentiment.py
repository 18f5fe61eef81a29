"""Conceptual Captions' sentiment rule (Sharma et al., ACL 2018, section 3): a caption of extreme
polarity, very positive or very negative, is an opinion rather than a description, and is dropped.
CC scored polarity with Google Cloud Natural Language; here VADER's lexicon model (the
``vaderSentiment`` package, its lexicon inside the wheel, so nothing needs the network) gives each
caption a compound score in [-1, 1], and ``|compound| > max_polarity`` drops it.

VADER is pure Python (tens of microseconds a caption). Most captions cannot reach the threshold,
so a cheap, exact bound runs first. A caption with no lexicon word (and no emoji) scores 0; one
with no emoji, no "but" and none of VADER's idioms ("kind of", "the bomb") scores at most
``normalize(sum(|valence| + caps + |boosters before it|) * 1.25**2 + punctuation)`` (negations
and "least" only shrink a valence; "this"/"so"/"never so" multiply it by 1.25, at most twice).
Only captions whose bound passes the threshold are scored, so the verdicts are those of scoring
every caption (``prefilter: false``; tested equal)."""

import math
import string
from dataclasses import dataclass, field

import numpy as np

from vlcurate.pipeline.filters.base import Filter
from vlcurate.pipeline.verdict import Verdict
from vlcurate.schemas.filter import EXTREME_SENTIMENT

_ANALYZERS: dict[str, object] = {}  # one loaded lexicon per worker process
_SLACK = 1e-9  # the bound is summed in another order than VADER's sum: float rounding


def load_vader():
    """VADER's analyser (lexicon and emoji table read once per process)."""
    if "vader" not in _ANALYZERS:
        try:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
        except ImportError as e:
            raise RuntimeError(
                "the sentiment rule needs vaderSentiment: pip install 'vlcurate[filter]'"
            ) from e
        _ANALYZERS["vader"] = SentimentIntensityAnalyzer()
    return _ANALYZERS["vader"]


@dataclass
class Sentiment(Filter):
    """Drops a caption whose VADER compound polarity is beyond ``max_polarity`` either way."""

    name = "sentiment"
    reasons = (EXTREME_SENTIMENT,)
    max_polarity: float = field(
        default=0.9,
        metadata={
            "help": "drop when VADER's compound score is above this, or below minus this",
            "min": 0,
            "max": 1,
        },
    )
    prefilter: bool = field(
        default=True,
        metadata={"help": "score only captions whose bound can pass max_polarity (same verdicts)"},
    )

    def setup(self):
        if not hasattr(self, "_vader"):
            self._vader = load_vader()
            self._bound = PolarityBound(self._vader)

    def polarity(self, caption: str) -> float:
        return self._vader.polarity_scores(caption)["compound"]

    def check(self, caption: str):
        if self.prefilter and self._bound.cannot_exceed(caption, self.max_polarity):
            return None
        return EXTREME_SENTIMENT if abs(self.polarity(caption)) > self.max_polarity else None

    def judge(self, table):
        self.setup()
        captions = table.column("caption").to_pylist()
        return Verdict(np.array([self.check(c or "") for c in captions], dtype=object))


class PolarityBound:
    """An upper bound on ``|compound|`` from a caption's lexicon words and the boosters before
    them, where VADER's rules can only shrink or mildly grow a valence ("but" and VADER's
    idioms can do more: those captions are scored)."""

    def __init__(self, vader):
        from vaderSentiment import vaderSentiment as v

        self.lexicon = vader.lexicon
        self.punctuation = vader._punctuation_emphasis
        self.emojis = frozenset(vader.emojis)
        self.boosters = {w: b for w, b in v.BOOSTER_DICT.items() if " " not in w}
        self.growers = frozenset({"this", "so", "never"})
        self.phrases = tuple(k for k in (*v.SPECIAL_CASES, *v.BOOSTER_DICT) if " " in k) + tuple(
            k for k in v.SPECIAL_CASES if " " not in k
        )
        self.caps = v.C_INCR

    def words(self, caption: str) -> list[str]:
        """VADER's tokens: split on white space, punctuation stripped unless that leaves <= 2
        characters (an emoticon)."""
        out = []
        for token in caption.split():
            stripped = token.strip(string.punctuation)
            out.append(token if len(stripped) <= 2 else stripped)
        return out

    def magnitude(self, caption: str) -> float | None:
        """The most ``|sum of valences|`` VADER can give ``caption``, or None: score it."""
        if not caption.isascii() and any(ch in self.emojis for ch in caption):
            return None
        tokens = self.words(caption)
        lower = [t.lower() for t in tokens]
        total, found = 0.0, False
        for i, word in enumerate(lower):
            valence = self.lexicon.get(word)
            if valence is None:
                continue
            found = True
            most = abs(valence) + (self.caps if tokens[i].isupper() else 0.0)
            for j in range(max(0, i - 3), i):  # the boosters VADER looks back at
                boost = self.boosters.get(lower[j])
                if boost is not None:
                    most += abs(boost) + (self.caps if tokens[j].isupper() else 0.0)
            total += most
        if not found:
            return 0.0  # no lexicon word: every valence is 0, and so is the compound
        joined = " ".join(lower)
        if "but" in lower or any(phrase in joined for phrase in self.phrases):
            return None
        if not self.growers.isdisjoint(lower):
            total *= 1.25**2  # "this"/"so" before a word, "never so": x1.25, twice at most
        return total + self.punctuation(caption)  # VADER's own "!" and "?" emphasis

    def cannot_exceed(self, caption: str, max_polarity: float) -> bool:
        """True when VADER's ``|compound|`` for ``caption`` is surely ``<= max_polarity``."""
        most = self.magnitude(caption)
        if most is None:
            return False
        most = most * (1 + _SLACK) + _SLACK
        return round(most / math.sqrt(most * most + 15), 4) <= max_polarity
