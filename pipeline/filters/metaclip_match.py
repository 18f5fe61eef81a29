"""MetaCLIP's substring matching: which metadata entries a caption contains, as whole tokens.

As MetaCLIP's ``substr_matching.py`` does it: every entry is padded to ``" entry "``; the
caption is padded with a space on each side, each of ``, . ; : ? !`` and the backtick gets a
space on each side, and tabs, newlines and carriage returns become spaces. An entry matches
where its padded form is a substring of the spaced caption, that is where its tokens appear
in the caption one after the other ("hot dog" in "a hot dog, grilled", not in "hotdogs").
A table of the entries' token n-grams, in C (``_metaclip_match.pyx``), finds them all in one
pass over a batch, overlapping matches included.

``lowercase`` (the default, for the lower-case ``builtin`` metadata) lowers both the entries and
the caption; MetaCLIP itself matches case-sensitively (``lowercase: false``). Entries that are
equal once stripped (and lowered) share the first one's id; empty entries never match.
"""

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
        from vlcurate.pipeline.filters._metaclip_match import NgramTable  # built by make venv

        self.size = len(entries)
        self.lowercase = lowercase
        keys, ids = [], []
        for i, entry in enumerate(entries):
            key = normalise_entry(entry, lowercase)
            if key and SEPARATOR not in key:
                keys.append(key.encode("utf-8", "surrogatepass"))
                ids.append(i)
        self.table = NgramTable(keys, ids)
        if self.table.entries == 0:
            raise ValueError("metadata: no entry with text in it")

    def match(self, caption: str | None) -> list[int]:
        """The sorted ids of the entries ``caption`` contains (none for a null caption)."""
        if not caption:
            return []
        text = spacing(caption, self.lowercase).encode("utf-8", "surrogatepass")
        return self.table.match(text, 1, False)[1].tolist()

    def match_arrow(self, captions: pa.Array | pa.ChunkedArray) -> pa.ListArray:
        """A list of entry ids per caption (int32, sorted), aligned with ``captions``.

        One pass for the whole batch: the captions are joined with NUL (which no entry holds,
        so no match spans two captions), spaced and lowered at once, and searched once, the
        NUL between two captions closing the first one's list."""
        texts = pc.fill_null(captions, "").to_pylist()
        joined = SEPARATOR.join(texts)
        if joined.count(SEPARATOR) != max(len(texts) - 1, 0):  # a caption holds a NUL
            return pa.array([self.match(text) for text in texts], pa.list_(pa.int32()))
        spaced = f" {_space_out(joined)} ".replace(SEPARATOR, f" {SEPARATOR} ")
        if self.lowercase:
            spaced = spaced.lower()
        offsets, ids = self.table.match(spaced.encode("utf-8", "surrogatepass"), len(texts), True)
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array(ids, pa.int32()))


def get_matcher(metadata: str, lowercase: bool = True) -> Matcher:
    """One matcher per (metadata, lowercase) per process: building it over 500k entries takes
    seconds, so a Spark worker (reused across tasks) builds it once."""
    key = (metadata, lowercase)
    if key not in _MATCHERS:
        from vlcurate.pipeline.filters.metaclip_metadata import load_metadata

        _MATCHERS[key] = Matcher(load_metadata(metadata), lowercase)
    return _MATCHERS[key]
