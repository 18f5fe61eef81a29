"""MetaCLIP's metadata: the list of entries (words and phrases) captions are matched against.

MetaCLIP (Xu et al., 2023, "Demystifying CLIP Data") released its ~500k entries as
``metadata.json``, a JSON list of strings, built from WordNet synsets, Wikipedia unigrams
(count >= 100), Wikipedia bigrams (pointwise mutual information >= 30) and Wikipedia article
titles ranked by page views. A user's file in that format is read by :func:`load_metadata`.

Offline there is no Wikipedia, so ``builtin`` (what ``curate metadata build`` writes) stands in:

- every WordNet 3.0 lemma name (Debian's ``wordnet-base``, read as
  :mod:`vlcurate.pipeline.filters.wordnet` does), ``_`` read as a space: 147k names, 64k of
  them multi-word collocations ("hot dog", "new york");
- the English words of ``wordfreq``'s large list down to ``min_zipf`` (about 320k words at
  1.0), in frequency order, in place of the Wikipedia unigram counts.

The difference: ``wordfreq`` counts single tokens only, so the bigrams come from WordNet's
collocations, not from Wikipedia's PMI-selected pairs; and there are no article titles, so
named entities are those WordNet has. Entries are lower-case (match with ``lowercase: true``).
"""

import json
import os
from pathlib import Path

import fsspec

from vlcurate.pipeline import storage
from vlcurate.pipeline.filters.wordnet import DEBIAN_WORDNET, load_wordnet

BUILTIN = "builtin"
BUILTIN_VERSION = 1  # bump when what build_metadata yields changes: the cache is per version
DEFAULT_MIN_ZIPF = 1.0
_LOADED: dict[str, list[str]] = {}


class MetadataError(ValueError):
    """A metadata file that is not a JSON list of strings."""


def _has_letter(word: str) -> bool:
    return any(ch.isalpha() for ch in word)


def build_metadata(
    wordnet: str | Path = DEBIAN_WORDNET, min_zipf: float = DEFAULT_MIN_ZIPF
) -> list[str]:
    """The builtin entries: WordNet lemma names (sorted), then ``wordfreq``'s English words of
    Zipf frequency >= ``min_zipf`` not already there (most frequent first); unique, lower-case,
    each with at least one letter."""
    import wordfreq

    names = {n.replace("_", " ").strip().lower() for n in load_wordnet(wordnet).all_lemma_names()}
    entries = sorted(n for n in names if n and _has_letter(n))
    seen = set(entries)
    frequencies = wordfreq.get_frequency_dict("en", wordlist="large")
    least = 10 ** (min_zipf - 9)  # Zipf = log10(frequency per billion words)
    for word, frequency in sorted(frequencies.items(), key=lambda kv: (-kv[1], kv[0])):
        if frequency < least:
            break
        word = word.strip().lower()
        if word and word not in seen and _has_letter(word):
            seen.add(word)
            entries.append(word)
    return entries


def write_metadata(entries: list[str], url: str) -> None:
    """``entries`` as MetaCLIP's ``metadata.json`` (a JSON list), written atomically."""
    storage.write_text_atomic(url, json.dumps(entries, ensure_ascii=False) + "\n")


def builtin_metadata() -> list[str]:
    """:func:`build_metadata`'s list, cached once per machine in :func:`storage.cache_home`."""
    if BUILTIN in _LOADED:
        return _LOADED[BUILTIN]
    cache = storage.cache_home() / f"metaclip-builtin-v{BUILTIN_VERSION}.json"
    if cache.exists():
        entries = json.loads(cache.read_text())
    else:
        entries = build_metadata()
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f"{cache.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(entries, ensure_ascii=False))
        tmp.replace(cache)
    _LOADED[BUILTIN] = entries
    return entries


def read_metadata(url: str) -> list[str]:
    """A ``metadata.json`` file: raises :class:`MetadataError` unless it is a non-empty JSON
    list of strings."""
    try:
        with fsspec.open(url, "rt", encoding="utf-8") as f:
            entries = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise MetadataError(f"{url}: not a readable JSON file ({e})") from None
    if not isinstance(entries, list) or not entries:
        raise MetadataError(f"{url}: MetaCLIP metadata is a non-empty JSON list of strings")
    bad = next((e for e in entries if not isinstance(e, str)), None)
    if bad is not None:
        raise MetadataError(f"{url}: entry {bad!r} is not a string")
    return entries


def check_entries(entries: list[str], url: str) -> None:
    """Raise :class:`MetadataError` unless some entry has text in it (one the matcher uses)."""
    if not any(e.strip() for e in entries):
        raise MetadataError(f"{url}: no entry with text in it ({len(entries):,} blank entries)")


def load_metadata(spec: str) -> list[str]:
    """``builtin`` or the URL of a ``metadata.json``; loaded once per process."""
    if spec == BUILTIN:
        return builtin_metadata()
    if spec not in _LOADED:
        _LOADED[spec] = read_metadata(spec)
    return _LOADED[spec]


def metadata_exists(spec: str) -> bool:
    return spec == BUILTIN or storage.exists(spec)
