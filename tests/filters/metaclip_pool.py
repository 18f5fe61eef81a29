"""A pool of captions with known MetaCLIP entry counts, for the balancing tests."""

import json

import numpy as np

from tests.pairs import pairs_table

# entry -> how many captions of the pool mention it (and only it, among the entries)
COUNTS = {
    "zebra": 5,
    "red panda": 20,
    "violin": 100,
    "lighthouse": 200,
    "dog": 400,
    "sunset": 1000,
    "cat": 3000,
}
FILLERS = ["a photo of a", "my", "an old", "the", "look at this"]
NO_ENTRY = ["nothing here at all", "just words", "zebras everywhere"]  # no whole-token entry


def metadata_file(tmp_path) -> str:
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps([*COUNTS, "unused entry"]))
    return str(path)


def pool(no_entry: int = 0, seed: int = 0):
    """A pair table: ``COUNTS[e]`` captions mentioning each entry ``e`` once (with different
    filler words and case), then ``no_entry`` captions matching none; shuffled."""
    rng = np.random.default_rng(seed)
    captions, entries = [], []
    for entry, n in COUNTS.items():
        for i in range(n):
            word = entry.upper() if i % 7 == 0 else entry
            captions.append(f"{FILLERS[i % len(FILLERS)]} {word}, number {i}.")
            entries.append(entry)
    for i in range(no_entry):
        captions.append(f"{NO_ENTRY[i % len(NO_ENTRY)]} {i}")
        entries.append(None)
    order = rng.permutation(len(captions))
    captions = [captions[i] for i in order]
    entries = [entries[i] for i in order]
    return pairs_table(*captions), entries


def check_histogram(facts: dict) -> None:
    """The facts' histogram adds up: its bins before sum to the entries matched and their
    matches; the entries of each bin keep no more after the draw than they had; the bins by
    the counts after sum to what the draw kept, and none lies above ``t``'s bin."""
    rows = facts["histogram"]
    assert sum(r["entries_before"] for r in rows) == facts["entries_matched"]
    assert sum(r["matches_before"] for r in rows) == facts["matches_before"]
    assert sum(r["entries_after"] for r in rows) == facts["entries_matched_after"]
    assert sum(r["matches_after"] for r in rows) == facts["matches_after"]
    assert sum(r["matches_kept"] for r in rows) == facts["matches_after"]
    for r in rows:
        assert r["entries_kept"] <= r["entries_before"] and r["matches_kept"] <= r["matches_before"]
        if r["low"] > facts["t"] * 2:  # an entry keeps about t captions: far above, none
            assert r["entries_after"] == 0, r
