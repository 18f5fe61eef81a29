"""What MetaCLIP balancing records and shows: the parameters and the per-entry count histogram
in stats.json (select's facts here; the filter stage's in test_metaclip_spark.py), the
report's section, and the recipe errors a bad balancing gives at load (one line, rc 2)."""

import json
from collections import Counter

import numpy as np
import pytest
import yaml

from tests.filters.metaclip_pool import COUNTS, check_histogram, metadata_file, pool
from vlcurate.jobs import cli
from vlcurate.pipeline.filters.metaclip import MetaclipBalance
from vlcurate.pipeline.filters.metaclip_stats import bin_uppers, histogram
from vlcurate.pipeline.recipe import RecipeError, load_recipe, parse_recipe
from vlcurate.pipeline.select.balance import balance_kept
from vlcurate.pipeline.select.balance_report import balance_section

BASE = {"name": "mc", "version": 1, "source": "test"}


def test_histogram_bins_are_log_spaced_and_add_up():
    before = np.array([0, 1, 1, 2, 10, 11, 100, 101, 5000, 0])
    after = np.array([0, 1, 1, 2, 10, 11, 100, 101, 120, 0])
    assert bin_uppers(5000) == [1, 10, 100, 1000, 10_000] and bin_uppers(1) == [1]
    rows = histogram(before, after)
    assert [r["bin"] for r in rows] == ["1", "2-10", "11-100", "101-1,000", "1,001-10,000"]
    assert [r["entries_before"] for r in rows] == [2, 2, 2, 1, 1]
    assert [r["matches_before"] for r in rows] == [2, 12, 111, 101, 5000]
    assert [r["entries_after"] for r in rows] == [2, 2, 2, 2, 0]
    assert [r["matches_after"] for r in rows] == [2, 12, 111, 221, 0]
    assert [r["entries_kept"] for r in rows] == [2, 2, 2, 1, 1]  # binned by the count before
    assert [r["matches_kept"] for r in rows] == [2, 12, 111, 101, 120]
    assert sum(r["matches_before"] for r in rows) == before.sum()
    assert histogram(np.zeros(3, int), np.zeros(3, int))[0]["entries_before"] == 0


def test_select_facts_record_what_balancing_used_and_did(tmp_path):
    t = 150
    table, truth = pool(no_entry=10, seed=4)
    reason = np.full(table.num_rows, None, dtype=object)
    meta = metadata_file(tmp_path)
    facts = balance_kept(table, reason, MetaclipBalance(metadata=meta, t=t, seed=9))["balance"]
    assert facts["t"] == t and facts["t_from"] == "t" and facts["seed"] == 9
    assert facts["metadata"] == meta and facts["metadata_source"] == "file"
    assert facts["metadata_entries"] == len(COUNTS) + 1
    assert facts["entries_matched"] == facts["entries_matched_after"] == len(COUNTS)
    kept = Counter(e for e, r in zip(truth, reason, strict=True) if r is None)
    assert facts["matches_before"] == sum(COUNTS.values())
    assert facts["matches_after"] == sum(kept.values())
    rows = {r["bin"]: r for r in facts["histogram"]}
    # 5 and 20..100 are under t: kept whole; 200..3000 sampled down to about t each
    head = ("lighthouse", "dog", "sunset", "cat")
    assert [rows["1,001-10,000"][k] for k in ("entries_before", "entries_after")] == [1, 0]
    assert rows["2-10"]["matches_after"] == rows["2-10"]["matches_before"] == COUNTS["zebra"]
    assert rows["11-100"]["matches_after"] == rows["11-100"]["matches_before"] == 120
    assert [rows["101-1,000"][k] for k in ("entries_before", "entries_after")] == [3, 4]
    assert rows["101-1,000"]["matches_after"] == sum(kept[e] for e in head)
    rule = MetaclipBalance(metadata=meta, tail_fraction=0.5)
    share = balance_kept(table, np.full(table.num_rows, None, dtype=object), rule)["balance"]
    assert share["t_from"] == "tail_fraction" and share["tail_fraction"] == 0.5
    check_histogram(facts)
    check_histogram(share)
    json.dumps(facts)  # stats.json can hold it


def test_report_section_shows_both_stages(tmp_path):
    table, _ = pool()
    reason = np.full(table.num_rows, None, dtype=object)
    facts = balance_kept(table, reason, MetaclipBalance(metadata=metadata_file(tmp_path), t=50))
    funnel = [("extract", {"in": 1}), ("filter", {"in": 9, "metaclip_balance": facts["balance"]})]
    html = balance_section(funnel, facts)
    assert html.startswith("<h2>MetaCLIP balancing</h2>")
    assert html.count("<svg") == 2 and html.count('<table class="balance">') == 2
    assert "<b>filter</b>: t = 50" in html and "<b>select</b>" in html
    assert f"{COUNTS['cat']:,}" in html  # the 3,000 cat matches before, in the head bin
    assert html.count("<th>matches kept of the entries before</th>") == 2
    assert balance_section([("filter", {"in": 3})], {}) == ""


def _filters(meta: str, **params) -> dict:
    return {**BASE, "filters": [{"metaclip_balance": {"metadata": meta, **params}}]}


def test_a_second_metaclip_balance_is_refused_at_load(tmp_path):
    meta = metadata_file(tmp_path)
    rule = {"metaclip_balance": {"metadata": meta, "t": 5}}
    recipe = {**BASE, "filters": [rule, {"char_length": {"min": 2}}, rule]}
    with pytest.raises(RecipeError) as e:
        parse_recipe(recipe)
    message = str(e.value)
    assert "filters[2] (metaclip_balance): given twice (first at filters[0])" in message
    assert "\n" not in message
    parse_recipe({**BASE, "filters": [{"char_length": {}}, {"char_length": {"min": 3}}]})


BAD_METADATA = [
    ('{"not": "a list"}', "non-empty JSON list of strings"),
    ("[]", "non-empty JSON list of strings"),
    ('["dog", 7]', "entry 7 is not a string"),
    ('["", "   "]', "no entry with text in it"),
    ("[dog", "not a readable JSON file"),
]


@pytest.mark.parametrize(("text", "message"), BAD_METADATA)
def test_malformed_metadata_is_refused_at_load(tmp_path, text, message):
    path = tmp_path / "metadata.json"
    path.write_text(text)
    with pytest.raises(RecipeError) as e:
        parse_recipe(_filters(str(path)))
    assert "filters.metaclip_balance.metadata:" in str(e.value) and message in str(e.value)
    assert "\n" not in str(e.value)
    with pytest.raises(RecipeError, match=message):  # select's balance: reads it the same way
        parse_recipe({**BASE, "filters": [], "select": {"balance": {"metadata": str(path)}}})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"t": 0}, "filters.metaclip_balance.t: 0 is not allowed (an integer >= 1, or null)"),
        ({"t": -3}, "filters.metaclip_balance.t: -3 is not allowed"),
        ({"t": 2.5}, "filters.metaclip_balance.t: 2.5 is not allowed"),
        ({"tail_fraction": 0}, "filters.metaclip_balance.tail_fraction: 0 is not allowed"),
        ({"tail_fraction": -0.5}, "filters.metaclip_balance.tail_fraction: -0.5 is not allowed"),
        ({"tail_fraction": 1.5}, "filters.metaclip_balance.tail_fraction: 1.5 is not allowed"),
        ({"t": 5, "tail_fraction": 0.5}, "give t or tail_fraction, not both"),
        ({"seed": "x"}, "filters.metaclip_balance.seed"),
    ],
)
def test_bad_thresholds_are_refused_naming_the_field(tmp_path, params, message):
    with pytest.raises(RecipeError, match="^[^\n]*$") as e:
        parse_recipe(_filters(metadata_file(tmp_path), **params))
    assert message in str(e.value)


def _cli_refuses(argv, capsys) -> str:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_the_cli_refuses_them_with_rc_2(tmp_path, capsys):
    meta = metadata_file(tmp_path)
    missing = str(tmp_path / "missing.json")
    recipes = {
        "twice": {**BASE, "filters": [{"metaclip_balance": {"metadata": meta}}] * 2},
        "missing": _filters(missing),
        "t": _filters(meta, t=0),
    }
    expected = {"twice": "given twice", "missing": "no file", "t": "metaclip_balance.t: 0"}
    for name, recipe in recipes.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(recipe))
        with pytest.raises(RecipeError):
            load_recipe(str(path))
        out = tmp_path / f"out-{name}"
        err = _cli_refuses(["filter", "-i", str(tmp_path), "-r", str(path), "-o", str(out)], capsys)
        assert expected[name] in err
        err = _cli_refuses(["run", str(path), "-i", "x.warc.gz", "-o", str(out)], capsys)
        assert expected[name] in err and not out.exists()
