"""MetaCLIP balancing without Spark: matching, p_to_t, the keep probability, the per-uid draw,
the rule in a recipe, and ``curate metadata build``."""

import json

import numpy as np
import pyarrow as pa
import pytest

from tests.filters.metaclip_pool import COUNTS, metadata_file, pool
from tests.pairs import pairs_table
from vlcurate.jobs import cli
from vlcurate.pipeline.filters.apply import annotate
from vlcurate.pipeline.filters.metaclip import (
    MetaclipBalance,
    draws,
    keep_probability,
    p_to_t,
)
from vlcurate.pipeline.filters.metaclip_match import Matcher, spacing
from vlcurate.pipeline.filters.metaclip_metadata import read_metadata
from vlcurate.pipeline.recipe import RecipeError, parse_recipe
from vlcurate.schemas.filter import METACLIP_NO_MATCH, METACLIP_SAMPLED_OUT


def test_spacing_pads_and_spaces_out_punctuation():
    assert spacing("A dog,\tthe cat.") == " a dog ,  the cat .  "
    assert spacing("Hi!", lowercase=False) == " Hi !  "


def test_matches_whole_token_phrases_only():
    m = Matcher(["dog", "hot dog", "cat", "Dog", "  ", "dog."])
    assert m.match("A hot dog, and a DOG.") == [0, 1]  # "Dog" shares "dog"'s id
    assert m.match("hotdogs and dogs") == []
    assert m.match("dog.") == [0]  # the caption's "." is spaced out; the entry "dog." never matches
    assert m.match(None) == [] and m.match("") == []
    assert Matcher(["Dog"], lowercase=False).match("dog Dog") == [0]
    assert Matcher(["Dog"], lowercase=False).match("dog") == []
    batch = ["a dog", None, "", "İstanbul hot DOG", "ΟΔΟΣ dog;cat", "x" * 50, "dog."]
    assert m.match_arrow(pa.array(batch)).to_pylist() == [m.match(c) for c in batch]
    with_nul = ["a dog\x00 cat", None, "hot dog"]  # a NUL in a caption: matched one by one
    assert m.match_arrow(pa.array(with_nul)).to_pylist() == [[2], [], [0, 1]]
    assert m.match_arrow(pa.array([], pa.string())).to_pylist() == []


def _brute_force(entries: list[str], caption: str) -> list[int]:
    """Entry ids whose tokens appear one after the other among the spaced caption's tokens."""
    tokens = spacing(caption).split(" ")
    found = set()
    for i, entry in enumerate(entries):
        want = entry.strip().lower().split(" ")
        if want == [""] or any(
            j < i and entries[j].strip().lower() == entry.strip().lower() for j in range(i)
        ):
            continue
        k = len(want)
        if any(tokens[s : s + k] == want for s in range(len(tokens) - k + 1)):
            found.add(i)
    return sorted(found)


def test_matching_equals_a_brute_force_phrase_search():
    rng = np.random.default_rng(1)
    words = "red blue dog cat hot new york city sun set sunset a the of on big".split()
    entries = sorted({" ".join(rng.choice(words, size=rng.integers(1, 4))) for _ in range(150)})
    entries += ["New York", "dog", " cat "]  # case and padding variants of entries above
    seps = [" ", " ", " ", ", ", ". ", "! ", "\t", "\n", "  ", "-", "'s "]
    captions = []
    for _ in range(400):
        parts = rng.choice(words + ["York", "Dog", "x"], size=rng.integers(0, 12))
        caption = "".join(f"{w}{rng.choice(seps)}" for w in parts)
        captions.append(caption.strip() if rng.random() < 0.5 else caption)
    matcher = Matcher(entries)
    got = matcher.match_arrow(pa.array(captions)).to_pylist()
    expected = [_brute_force(entries, c) for c in captions]
    assert got == expected
    assert sum(map(len, expected)) > 400  # the comparison is not vacuous


def test_matching_equals_metaclips_substring_rule():
    """The definition itself: ``" entry "`` a substring of the spaced caption. Entries with
    doubled spaces, punctuation, tabs and non-ASCII letters; a caption of repeated words (more
    matches than bytes, so the output grows); case kept and lowered."""
    rng = np.random.default_rng(7)
    words = ["a", "b", "ab", "straße", "İs", "ΟΔΟΣ", "x.y", "", "c\td", "日本"]
    entries = [" ".join(rng.choice(words, size=rng.integers(1, 5))) for _ in range(300)]
    entries += ["a", "a a", "a a a", "a  b", "  b ", "x.y", "c\td", "a\x00b"]
    captions = ["a " * 400, "a  b  a  b", "x.y c\td", "a\x00b c"]
    for _ in range(300):
        parts = rng.choice(words + ["A", "B", "Ab"], size=rng.integers(0, 10))
        captions.append("".join(f"{w}{rng.choice([' ', '  ', ', ', '.', chr(9)])}" for w in parts))
    for lowercase in (True, False):
        matcher = Matcher(entries, lowercase)
        keys = {}
        for i, entry in enumerate(entries):
            key = entry.strip().lower() if lowercase else entry.strip()
            if key and "\x00" not in key:
                keys.setdefault(key, i)
        expected = [
            sorted(i for key, i in keys.items() if f" {key} " in spacing(c, lowercase))
            for c in captions
        ]
        assert matcher.match_arrow(pa.array(captions)).to_pylist() == expected
        assert [matcher.match(c) for c in captions] == expected
        assert sum(map(len, expected)) > len(captions) and len(expected[0]) == 3


def test_p_to_t_is_the_smallest_threshold_keeping_the_share():
    counts = np.array([1, 2, 3, 7, 40, 100, 0])
    for share in (0.05, 0.2, 0.5, 0.61, 0.9, 0.999, 1.0):
        t = p_to_t(counts, share)
        kept = [np.minimum(counts, s).sum() / counts.sum() for s in (t - 1, t)]
        assert kept[1] >= share - 1e-12 and (t == 1 or kept[0] < share)
    assert p_to_t(counts, 1.0) == 100


def test_keep_probability_is_one_minus_the_product_over_entries():
    counts = np.array([10, 1000, 4000, 50])
    entries = pa.array([[0], [1], [1, 2], [], [2, 3], [1, 2, 2]], pa.list_(pa.int32()))
    p = keep_probability(entries, counts, 100)
    expected = [1.0, 0.1, 1 - 0.9 * 0.975, 0.0, 1.0, 1 - 0.9 * 0.975**2]
    assert np.allclose(p, expected)


def test_draws_depend_on_seed_and_uid_only():
    a = draws(["u1", "u2", "u3"], seed=7)
    assert np.array_equal(a, draws(["u1", "u2", "u3"], seed=7))
    assert np.array_equal(a[1:], draws(["u2", "u3"], seed=7))
    assert not np.array_equal(a, draws(["u1", "u2", "u3"], seed=8))
    big = draws([str(i) for i in range(20_000)], seed=0)
    assert 0 <= big.min() and big.max() < 1 and abs(big.mean() - 0.5) < 0.01


def _balance(table, rule, t):
    """The corpus-wide step in plain Python: count over the kept rows, then draw."""
    annotated = annotate(table, parse_recipe(_recipe(rule)).rules)
    alive = annotated.filter(pa.compute.is_null(annotated.column("drop_reason")))
    ids = rule.matcher().match_arrow(alive.column("caption"))
    flat = pa.compute.list_flatten(ids).to_numpy()
    counts = np.bincount(flat, minlength=rule.matcher().size)
    out = [rule.draw_batch(b, counts, t) for b in annotated.to_batches()]
    return pa.Table.from_batches(out), counts


def _recipe(rule: MetaclipBalance) -> dict:
    params = {"metadata": rule.metadata, "t": rule.t, "seed": rule.seed}
    return {"name": "mc", "version": 1, "source": "test", "filters": [{"metaclip_balance": params}]}


def test_balancing_caps_head_entries_and_keeps_the_tail(tmp_path):
    t = 200
    table, truth = pool(no_entry=30)
    rule = MetaclipBalance(metadata=metadata_file(tmp_path), t=t, seed=3)
    result, counts = _balance(table, rule, t)
    assert counts[: len(COUNTS)].tolist() == list(COUNTS.values()) and counts[-1] == 0
    reasons = result.column("drop_reason").to_pylist()
    assert reasons.count(METACLIP_NO_MATCH) == 30
    for entry, n in COUNTS.items():
        kept = sum(e == entry and r is None for e, r in zip(truth, reasons, strict=True))
        if n <= t:
            assert kept == n, entry  # tail entries are kept whole
        else:  # head entries: Binomial(n, t / n) around t
            assert abs(kept - t) <= 4 * np.sqrt(t * (1 - t / n)), (entry, kept)
    assert reasons.count(METACLIP_SAMPLED_OUT) + reasons.count(None) == sum(COUNTS.values())
    again, _ = _balance(table, rule, t)
    assert _kept_uids(again) == _kept_uids(result)  # a rerun keeps the same samples
    other, _ = _balance(table, MetaclipBalance(metadata=rule.metadata, t=t, seed=4), t)
    assert _kept_uids(other) != _kept_uids(result)


def _kept_uids(table) -> list[str]:
    reasons = table.column("drop_reason").to_pylist()
    return [u for u, r in zip(table.column("uid").to_pylist(), reasons, strict=True) if r is None]


def test_the_rule_in_a_recipe(tmp_path):
    meta = metadata_file(tmp_path)
    rule = parse_recipe(_recipe(MetaclipBalance(metadata=meta, t=5))).filters[-1]
    assert isinstance(rule, MetaclipBalance) and rule.t == 5
    assert MetaclipBalance(metadata=meta).t == 20_000
    assert MetaclipBalance(metadata=meta, tail_fraction=0.5).threshold(np.array([1, 9])) == 4
    verdict = rule.judge(pairs_table("a cat", "no match", None))
    assert verdict.reasons.tolist() == [None, METACLIP_NO_MATCH, METACLIP_NO_MATCH]
    base = {"name": "mc", "version": 1, "source": "test"}
    bad = [
        ({"metadata": meta, "t": 5, "tail_fraction": 0.5}, "not both"),
        ({"metadata": str(tmp_path / "missing.json")}, "no file"),
        ({"metadata": meta, "t": 0}, "metaclip_balance.t"),
        ({"metadata": meta, "tail_fraction": 1.5}, "tail_fraction"),
    ]
    for params, message in bad:
        with pytest.raises(RecipeError, match=message):
            parse_recipe({**base, "filters": [{"metaclip_balance": params}]})


def test_metadata_build_writes_a_metaclip_list(tmp_path, capsys):
    out = tmp_path / "metadata.json"
    assert cli.main(["metadata", "build", "--output", str(out), "--min-zipf", "3"]) == 0
    entries = json.loads(out.read_text())
    assert read_metadata(str(out)) == entries
    assert all(isinstance(e, str) and e == e.strip().lower() and e for e in entries)
    assert len(set(entries)) == len(entries) > 150_000
    assert {"dog", "hot dog", "new york", "the", "photograph"} <= set(entries)
    assert f"{len(entries):,} entries" in capsys.readouterr().out
    m = Matcher(entries)
    found = {entries[i] for i in m.match("A hot dog on a plate, New York.")}
    assert {"hot dog", "dog", "plate", "new york", "new", "york"} <= found
    (tmp_path / "bad.json").write_text('{"not": "a list"}')
    with pytest.raises(ValueError, match="JSON list"):
        read_metadata(str(tmp_path / "bad.json"))
