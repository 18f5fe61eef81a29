"""Conceptual Captions' text rules, with captions that pass and captions that fail."""

import pytest

from tests.pairs import pairs_table
from vlcurate.pipeline.filters.cc3m import (
    BoilerplateCrop,
    Capitalisation,
    PartOfSpeech,
    Profanity,
    TokenRepetition,
    Vocabulary,
)
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


def verdicts(rule, *captions):
    return list(rule.judge(pairs_table(*captions)).reasons)


def test_boilerplate_is_cropped_and_plain_captions_are_untouched():
    verdict = BoilerplateCrop().judge(
        pairs_table(
            "Sunset over the sea | Shutterstock",
            "Click to enlarge: a red barn in winter",
            "A cat on a sofa. Photo by John Smith",
            "Mountain lake at dawn - Getty Images",
            "A high-res image of a bridge © 2019 Some Agency",
            "Stock Photo",
            "A plain caption.",
        )
    )
    assert verdict.columns["caption"].to_pylist() == [
        "Sunset over the sea",
        "a red barn in winter",
        "A cat on a sofa.",
        "Mountain lake at dawn",
        "A image of a bridge",
        "",
        "A plain caption.",
    ]
    assert list(verdict.reasons) == [None] * 5 + [CAPTION_EMPTY, None]


@pytest.mark.parametrize(
    ("caption", "reason"),
    [
        ("A black dog running on the beach", None),
        ("The Space Needle and Seattle skyline obscured by wildfire smoke", None),  # real
        ("black dog running on the beach", LOWERCASE_START),
        ("Best Cheap Hotels In Downtown Chicago", TOO_MANY_CAPITALS),
        ("Kyle Lo", None),  # too short for the ratio rule
        ("123 main street at night", LOWERCASE_START),  # the first *word* is "main"
    ],
)
def test_capitalisation(caption, reason):
    assert verdicts(Capitalisation(), caption) == [reason]


def test_token_repetition_and_unique_ratio():
    rule = TokenRepetition(max_repeat_ratio=0.4, min_unique_ratio=0.6)
    assert verdicts(
        rule,
        "A dog and a cat on a red sofa",
        "cheap cheap cheap shoes cheap",
        "shoes boots shoes boots shoes boots sandals heels",
        "Buy now",
    ) == [None, TOKEN_REPETITION, LOW_UNIQUE_RATIO, None]


def test_vocabulary_coverage():
    rule = Vocabulary(min_coverage=1.0, min_zipf=1.0)
    assert verdicts(rule, "A red barn in a snowy field", "A qzxwv blorptangle in a field") == [
        None,
        OUT_OF_VOCABULARY,
    ]
    lenient = Vocabulary(min_coverage=0.6)
    assert verdicts(lenient, "A qzxwv barn in a snowy field") == [None]


def test_profanity_list():
    rule = Profanity(extra_words=["badword"])
    assert verdicts(rule, "A dog in a park", "What the fuck is this", "A BADWORD here") == [
        None,
        PROFANITY,
        PROFANITY,
    ]


def test_part_of_speech_structure_and_noun_ratio():
    rule = PartOfSpeech()
    assert verdicts(
        rule,
        "A black dog running on the beach at sunset",  # DET NOUN ADP
        "A collage of diverse, smiling faces",  # real (allenai.org)
        "Semantic Scholar",  # real: proper nouns only
        "Very quickly",  # no noun at all
        "Seattle Washington USA skyline photo stock image",  # all nouns
    ) == [None, None, POS_STRUCTURE, POS_STRUCTURE, POS_STRUCTURE]
    strict = PartOfSpeech(require_any=[["NOUN"]], max_noun_ratio=0.5)
    assert verdicts(strict, "Downtown skyline photo at night") == [NOUN_RATIO]


def test_missing_spacy_model_is_a_clear_error():
    with pytest.raises(RuntimeError, match="spaCy model 'no_such_model' is not installed"):
        PartOfSpeech(model="no_such_model").setup()
