"""Conceptual Captions' sentiment rule with VADER's lexicon: extreme captions go, descriptions
stay, and the prefilter's bound gives the verdicts of scoring every caption."""

import random

import pytest

from tests.pairs import pairs_table
from vlcurate.pipeline.config import ConfigError
from vlcurate.pipeline.filters.sentiment import Sentiment, load_vader
from vlcurate.pipeline.recipe import load_recipe, parse_recipe
from vlcurate.schemas.filter import EXTREME_SENTIMENT

DESCRIPTIONS = [
    "a dog on the beach",
    "a beautiful sunset over the sea",
    "a happy smiling woman",
    "a terrible car crash on the highway",
    "",
]
EXTREME = [
    "An amazing, wonderful, beautiful, lovely, happy day",
    "A horrible, disgusting, evil murder",
    "Beautiful happy wedding, love it!!!",
]


def verdicts(rule, *captions):
    return list(rule.judge(pairs_table(*captions)).reasons)


def test_extreme_polarity_is_dropped_and_descriptions_stay():
    rule = Sentiment()
    assert verdicts(rule, *DESCRIPTIONS, *EXTREME) == [None] * 5 + [EXTREME_SENTIMENT] * 3
    assert verdicts(Sentiment(max_polarity=0.5), "a beautiful sunset over the sea") == [
        EXTREME_SENTIMENT
    ]
    assert verdicts(Sentiment(max_polarity=1.0), *EXTREME) == [None] * 3


def test_threshold_is_range_checked_and_the_cc3m_recipe_uses_the_rule():
    with pytest.raises(ConfigError, match=r"sentiment\.max_polarity: 1\.5 is not allowed"):
        Sentiment(max_polarity=1.5)
    rules = {rule.name: rule for rule in load_recipe("cc3m").filters}
    assert rules["sentiment"].max_polarity == 0.9
    bad = {"name": "x", "version": 1, "source": "t", "filters": [{"sentiment": {"max": 1}}]}
    with pytest.raises(Exception, match="max"):
        parse_recipe(bad)


def fuzzed_captions(n: int, seed: int = 0) -> list[str]:
    """Captions built to reach every rule VADER has: strong and weak lexicon words, boosters
    and dampeners (some in capitals), negations, "least", "this"/"so"/"never so", "but", idioms,
    emoticons and emoji, "!" and "?" runs, attached punctuation."""
    vader = load_vader()
    rng = random.Random(seed)
    strong = sorted(w for w, v in vader.lexicon.items() if abs(v) >= 2.5 and w.isalpha())
    weak = sorted(w for w, v in vader.lexicon.items() if abs(v) < 1.5 and w.isalpha())
    emoticons = [":)", ":(", ":D", "<3", ":-("]
    plain = "a the dog on beach of with in red car house two people at sunset city".split()
    modifiers = "very extremely kind sort of just enough barely slightly really so".split()
    turns = ["not", "no", "never", "isn't", "least", "at", "without", "doubt", "this", "but"]
    idioms = ["the bomb", "bad ass", "yeah right", "to die for", "kiss of death", "the shit"]
    emoji = ["\U0001f600", "\U0001f622", "\u2764", "\U0001f494"]
    lead = ["this", "so", "never so", "never this", "very", "not", "no", "at least", "but"]
    led = [f"{first} {word}" for first in lead for word in strong[::7]]  # word and what precedes
    pools = [plain] * 5 + [strong] * 2 + [weak, modifiers, turns, emoticons, idioms, emoji, led]
    out = []
    for _ in range(n):
        words = []
        for _ in range(rng.randint(1, 14)):
            word = rng.choice(rng.choice(pools))
            if rng.random() < 0.08:
                word = word.upper()
            if rng.random() < 0.1:
                word += rng.choice([",", ".", "!", "?", "..."])
            words.append(word)
        out.append(" ".join(words) + rng.choice(["", "", "!", "!!", "!!!!!", "??", "????"]))
    return out


def test_the_prefilter_gives_the_verdicts_of_scoring_every_caption():
    captions = fuzzed_captions(4000) + DESCRIPTIONS + EXTREME
    table = pairs_table(*captions)
    skipped = 0
    for threshold in (0.0, 0.05, 0.3, 0.6, 0.8, 0.9, 0.95, 1.0):
        fast = Sentiment(max_polarity=threshold)
        slow = Sentiment(max_polarity=threshold, prefilter=False)
        assert list(fast.judge(table).reasons) == list(slow.judge(table).reasons)
        bound = fast._bound
        for caption in captions:
            if bound.cannot_exceed(caption, threshold):  # each skip is sound on its own
                skipped += 1
                assert abs(slow.polarity(caption)) <= threshold, caption
    assert skipped > 4000  # the bound does skip work, at these thresholds
