"""The measures the document rules compare with their thresholds (defined precisely in
:mod:`vlcurate.pipeline.docs.filters`): normalised words, repetition ratios, the special-character
ratio and word-list ratios."""

import unicodedata
from collections import Counter
from collections.abc import Iterable

_STRIP = "".join(chr(c) for c in range(33, 127) if not chr(c).isalnum()) + "“”‘’«»„‚‹›—–…¡¿·•"
_SPECIAL: dict[str, bool] = {}  # per-character cache of is_special


def normalise(word: str) -> str:
    return word.lower().replace("’", "'").strip(_STRIP)


def _is_special(char: str) -> bool:
    special = _SPECIAL.get(char)
    if special is None:
        special = not char.isspace() and unicodedata.category(char)[0] not in "LM"
        _SPECIAL[char] = special
    return special


def special_char_ratio(text: str) -> float:
    if not text:
        return 0.0
    counts = Counter(text)  # one pass in C; then one check per distinct character
    return sum(n for char, n in counts.items() if _is_special(char)) / len(text)


def _repeated_share(grams: Iterable, total: int) -> float:
    if total <= 0:
        return 0.0
    return sum(n for n in Counter(grams).values() if n > 1) / total


def char_repetition_ratio(text: str, n: int = 10) -> float:
    text = " ".join(text.lower().split())
    total = len(text) - n + 1
    return _repeated_share((text[i : i + n] for i in range(total)), total)


def word_repetition_ratio(words: list[str], n: int = 5) -> float:
    """``words``: normalised words."""
    return _repeated_share(zip(*(words[i:] for i in range(n)), strict=False), len(words) - n + 1)


def word_list_ratio(words: list[str], vocabulary: frozenset[str]) -> float:
    """``words``: normalised words."""
    return sum(w in vocabulary for w in words) / len(words) if words else 0.0
