"""Each rule with captions that pass and captions that fail, real ones from the bundled WARC
files among them (marked "real")."""

import pytest

from tests.pairs import pairs_table
from vlcurate.pipeline.filters.language import Language
from vlcurate.pipeline.filters.text import CaptionValid, CharLength, JunkCaption, WordCount
from vlcurate.pipeline.filters.url import DeclaredSize, ImageExtension, TrackingPixel, UrlJunkWords
from vlcurate.schemas.filter import (
    CAPTION_CONTROL_CHARS,
    CAPTION_DIGITS,
    CAPTION_EMPTY,
    CAPTION_FILENAME,
    CAPTION_GENERIC,
    CAPTION_OVERSIZED,
    CAPTION_PUNCTUATION,
    CAPTION_URL,
    DECLARED_TOO_SMALL,
    LANGUAGE_NOT_WANTED,
    LANGUAGE_UNCERTAIN,
    TOO_FEW_CHARS,
    TOO_FEW_WORDS,
    TOO_MANY_CHARS,
    TOO_MANY_WORDS,
    TRACKING_PIXEL,
    URL_EXTENSION,
    URL_JUNK_WORD,
)


def verdicts(rule, *captions, **columns):
    return list(rule.judge(pairs_table(*captions, **columns)).reasons)


def test_caption_valid():
    rule = CaptionValid(max_bytes=1000)
    assert verdicts(
        rule, "A red bus", None, "   ", "bad\x00nul", "x" * 1001, "tab\tand\nnewline ok"
    ) == [None, CAPTION_EMPTY, CAPTION_EMPTY, CAPTION_CONTROL_CHARS, CAPTION_OVERSIZED, None]


def test_multi_megabyte_caption_is_dropped_not_crashed():
    assert verdicts(CaptionValid(), "word " * 1_000_000) == [CAPTION_OVERSIZED]


def test_char_length_counts_characters_not_bytes():
    rule = CharLength(min=5, max=20)
    assert verdicts(rule, "Macaw", "Kyle", "été à", "x" * 21) == [
        None,
        TOO_FEW_CHARS,
        None,
        TOO_MANY_CHARS,
    ]


def test_word_count_splits_on_whitespace():
    rule = WordCount(min=3, max=5)
    captions = [
        "Escudo d'armas",
        "A enciclopedia libre",
        "  padded  two  ",
        "one two three four five six",
    ]
    assert verdicts(rule, *captions) == [TOO_FEW_WORDS, None, TOO_FEW_WORDS, TOO_MANY_WORDS]


@pytest.mark.parametrize(
    ("caption", "reason"),
    [
        ("kyle_lo_profile.jpg", CAPTION_FILENAME),  # real (kyleclo.com)
        ("IMG_2031.JPG", CAPTION_FILENAME),
        ("DSC0001", CAPTION_FILENAME),
        ("PXL_20240101_123456789", CAPTION_FILENAME),
        ("9f86d081884c7d659a2feaa0c55ad015", CAPTION_FILENAME),
        ("https://example.com/a.jpg", CAPTION_URL),
        ("www.example.com", CAPTION_URL),
        ("Image", CAPTION_GENERIC),
        ("  photo. ", CAPTION_GENERIC),
        ("Click here!", CAPTION_GENERIC),
        ("Thumbnail", CAPTION_GENERIC),
        ("2024-05-20", CAPTION_DIGITS),
        ("12345", CAPTION_DIGITS),
        ("...", CAPTION_PUNCTUATION),
        ("★ ★ ★", CAPTION_PUNCTUATION),
        ("Escudo d'armas", None),  # real (an.wikipedia.org)
        ("A collage of diverse, smiling faces.", None),  # real (allenai.org)
        ("Photo of a dog on a beach", None),
        ("Logo design for a bakery", None),
        ("1984 by George Orwell", None),
    ],
)
def test_junk_caption(caption, reason):
    assert verdicts(JunkCaption(), caption) == [reason]


def test_junk_caption_checks_can_be_switched_off():
    rule = JunkCaption(filenames=False, generic=["logo"])
    assert verdicts(rule, "IMG_2031.JPG", "logo", "image") == [None, CAPTION_GENERIC, None]


def test_image_extension_allow_list():
    urls = [
        "https://x.org/a.JPG",
        "https://x.org/a.png?w=300",
        "https://x.org/a.svg",
        "https://x.org/image?id=3",
        "https://x.org/dir.v2/file",
        "https://upload.wikimedia.org/x/Flag.svg/36px-Flag.svg.png",  # real
    ]
    rule = ImageExtension(allowed=["jpg", "jpeg", "png"])
    assert verdicts(rule, *["c"] * 6, urls=urls) == [None, None, URL_EXTENSION, None, None, None]
    strict = ImageExtension(allowed=["jpg", "png"], allow_missing=False)
    assert verdicts(strict, "c", "c", urls=urls[2:4]) == [URL_EXTENSION, URL_EXTENSION]


def test_url_junk_words_as_mmc4():
    urls = [
        "https://assets.example.com/605b_icon-account.svg",  # real (semanticscholar.org)
        "https://creativecommons.org/wp-content/uploads/2024/02/DPGA_Logo.png",  # real
        "https://x.org/plugins/share-button.png",
        "https://x.org/photos/beach.jpg",
    ]
    assert verdicts(UrlJunkWords(), *["c"] * 4, urls=urls) == [URL_JUNK_WORD] * 3 + [None]
    assert verdicts(UrlJunkWords(words=[]), *["c"] * 4, urls=urls) == [None] * 4  # none: none


def test_tracking_pixel_and_declared_size():
    widths, heights = [1, 1, 300, None, 50, 0], [1, 300, 1, None, 500, None]
    assert verdicts(TrackingPixel(), *["c"] * 6, widths=widths, heights=heights) == [
        TRACKING_PIXEL,
        TRACKING_PIXEL,
        TRACKING_PIXEL,
        None,
        None,
        TRACKING_PIXEL,
    ]
    assert verdicts(DeclaredSize(min_side=64), *["c"] * 6, widths=widths, heights=heights)[3:] == [
        None,
        DECLARED_TOO_SMALL,
        DECLARED_TOO_SMALL,
    ]


def test_language_identification_adds_columns_and_filters():
    captions = [
        "The Space Needle and Seattle skyline obscured by smoke",  # real
        "Ceci est une photo de la tour Eiffel à Paris",
        "Das ist ein Foto vom Brandenburger Tor in Berlin",
        "Macaw",  # real: a single word, low confidence
    ]
    verdict = Language(keep=["en"], min_score=0.3).judge(pairs_table(*captions))
    assert verdict.columns["language"].to_pylist()[:3] == ["en", "fr", "de"]
    scores = verdict.columns["language_score"].to_pylist()
    assert scores[0] > 0.8 and scores[3] < 0.3
    assert list(verdict.reasons) == [
        None,
        LANGUAGE_NOT_WANTED,
        LANGUAGE_NOT_WANTED,
        LANGUAGE_UNCERTAIN,
    ]


def test_language_keeps_any_when_keep_is_null():
    assert verdicts(Language(), "Ceci est une photo de la tour Eiffel à Paris") == [None]


def test_missing_language_model_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="language-id model not found"):
        Language(model=str(tmp_path / "nope.bin")).setup()


def test_language_can_look_at_a_prefix_only():
    caption = (
        "A black dog running on the beach at sunset "
        + "Ceci est une très longue phrase en français " * 20
    )
    whole = Language().judge(pairs_table(caption)).columns["language"].to_pylist()
    prefix = Language(max_chars=40).judge(pairs_table(caption)).columns["language"].to_pylist()
    assert (whole, prefix) == (["fr"], ["en"])
