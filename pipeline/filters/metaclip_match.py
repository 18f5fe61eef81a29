"""MetaCLIP's substring matching: which metadata entries a caption contains, as whole tokens.

As MetaCLIP's ``substr_matching.py`` does it: every entry is padded to ``" entry "``; the
caption is padded with a space on each side, each of ``, . ; : ? !`` and the backtick gets a
space on each side, and tabs, newlines and carriage returns become spaces. An entry matches
where its padded form is a substring of the spaced caption, that is where its tokens appear
in the caption one after the other ("hot dog" in "a hot dog, grilled", not in "hotdogs").
One Aho-Corasick automaton (``pyahocorasick``) over every entry finds them all in one pass,
overlapping matches included.

``lowercase`` (the default, for the lower-case ``builtin`` metadata) lowers both the entries and
the caption; MetaCLIP itself matches case-sensitively (``lowercase: false``). Entries that are
equal once stripped (and lowered) share the first one's id; empty entries never match.
"""

from itertools import chain

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

PUNCTUATION = ",.;:?!`"
SEPARATOR = "\x00"  # between the captions of a batch; entries holding it are skipped
_REPLACE = (*((p, f" {p} ") for p in PUNCTUATION), ("\t", " "), ("\n", " "), ("\r", " "))
_MATCHERS: dict[tuple[str, bool], "Matcher"] = {}


def _space_out(text: str) -> str:
    for old, new in _REPLACE:  # str.replace runs in C: 14 times str.translate's speed here
        if old in text:
            text = text.replace(old, new)
    return text


def spacing(text: str, lowercase: bool = True) -> str:
    """The caption as the entries are searched in: padded, punctuation spaced out."""
    spaced = f" {_space_out(text)} "
    return spaced.lower() if lowercase else spaced


def normalise_entry(entry: str, lowercase: bool = True) -> str:
    entry = entry.strip()
    return entry.lower() if lowercase else entry


class Matcher:
    """Entry ids (positions in ``entries``) of the entries each caption contains."""

    def __init__(self, entries: list[str], lowercase: bool = True):
        import ahocorasick  # an install requirement; imported here so recipes load without it

        self.size = len(entries)
        self.lowercase = lowercase
        self.automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
        for i, entry in enumerate(entries):
            key = normalise_entry(entry, lowercase)
            if key and SEPARATOR not in key and f" {key} " not in self.automaton:
                self.automaton.add_word(f" {key} ", i)
        if len(self.automaton) == 0:
            raise ValueError("metadata: no entry with text in it")
        self.automaton.make_automaton()

    def match(self, caption: str | None) -> list[int]:
        """The sorted ids of the entries ``caption`` contains (none for a null caption)."""
        if not caption:
            return []
        found = {i for _, i in self.automaton.iter(spacing(caption, self.lowercase))}
        return sorted(found)

    def match_arrow(self, captions: pa.Array | pa.ChunkedArray) -> pa.ListArray:
        """A list of entry ids per caption (int32, sorted), aligned with ``captions``.

        One pass for the whole batch: the captions are joined with NUL (which no entry holds,
        so no match spans two captions), spaced and lowered at once, searched once, and each
        match is given to its caption by the position of the separators around it."""
        texts = pc.fill_null(captions, "").to_pylist()
        joined = SEPARATOR.join(texts)
        if joined.count(SEPARATOR) != max(len(texts) - 1, 0):  # a caption holds a NUL
            return self._match_each(texts)
        spaced = f" {_space_out(joined)} ".replace(SEPARATOR, f" {SEPARATOR} ")
        if self.lowercase:
            spaced = spaced.lower()
        codes = np.frombuffer(spaced.encode("utf-32-le"), dtype=np.uint32)
        bounds = np.flatnonzero(codes == 0)  # positions of the separators, in characters
        found = np.fromiter(chain.from_iterable(self.automaton.iter(spaced)), dtype=np.int64)
        ends, ids = found[0::2], found[1::2]
        keys = np.sort(np.searchsorted(bounds, ends) * self.size + ids)
        keys = keys[np.concatenate([keys[:1] >= 0, keys[1:] != keys[:-1]])]  # np.unique: slower
        rows, ids = np.divmod(keys, self.size)
        offsets = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=len(texts)))])
        return pa.ListArray.from_arrays(
            pa.array(offsets.astype(np.int32)), pa.array(ids.astype(np.int32), pa.int32())
        )

    def _match_each(self, texts: list[str]) -> pa.ListArray:
        matches = [self.match(text) for text in texts]
        return pa.array(matches, pa.list_(pa.int32()))


def get_matcher(metadata: str, lowercase: bool = True) -> Matcher:
    """One matcher per (metadata, lowercase) per process: building it over 500k entries takes
    seconds, so a Spark worker (reused across tasks) builds it once."""
    key = (metadata, lowercase)
    if key not in _MATCHERS:
        from vlcurate.pipeline.filters.metaclip_metadata import load_metadata

        _MATCHERS[key] = Matcher(load_metadata(metadata), lowercase)
    return _MATCHERS[key]
