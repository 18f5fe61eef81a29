"""MetaCLIP balancing as the select stage's last step (``select: balance:``)."""

import numpy as np
import pytest

from tests.filters.metaclip_pool import COUNTS, metadata_file, pool
from vlcurate.pipeline.filters.metaclip import MetaclipBalance, p_to_t
from vlcurate.pipeline.recipe import RecipeError, parse_recipe
from vlcurate.pipeline.select.balance import balance_kept
from vlcurate.schemas.select import METACLIP_NO_MATCH, METACLIP_SAMPLED_OUT, NSFW

BASE = {"name": "mc", "version": 1, "source": "test", "filters": []}


def test_select_balance_is_a_checked_recipe_option(tmp_path):
    meta = metadata_file(tmp_path)
    recipe = parse_recipe({**BASE, "select": {"balance": {"metadata": meta, "t": 7, "seed": 2}}})
    assert recipe.select.balance == MetaclipBalance(metadata=meta, t=7, seed=2)
    assert parse_recipe(BASE).select.balance is None
    with pytest.raises(RecipeError, match="not both"):
        parse_recipe(
            {**BASE, "select": {"balance": {"metadata": meta, "t": 7, "tail_fraction": 1}}}
        )
    with pytest.raises(RecipeError, match="select"):
        parse_recipe({**BASE, "select": {"balance": {"metadata": meta, "bogus": 1}}})


def test_balancing_last_caps_heads_and_leaves_earlier_drops_alone(tmp_path):
    t = 120
    table, truth = pool(no_entry=25, seed=2)
    reason = np.full(table.num_rows, None, dtype=object)
    reason[:50] = NSFW  # dropped earlier: not counted, not touched
    rule = MetaclipBalance(metadata=metadata_file(tmp_path), t=t, seed=5)
    facts = balance_kept(table, reason, rule)
    assert facts["balance_t"] == t and facts["balance_entries_matched"] == len(COUNTS)
    assert list(reason[:50]) == [NSFW] * 50
    assert sum(r == METACLIP_NO_MATCH for r in reason) == truth[50:].count(None)
    for entry in COUNTS:
        present = sum(e == entry for e in truth[50:])
        kept = sum(e == entry and r is None for e, r in zip(truth, reason, strict=True))
        if present <= t:
            assert kept == present, entry
        else:
            assert abs(kept - t) <= 4 * np.sqrt(t * (1 - t / present)), (entry, kept)
    again = np.full(table.num_rows, None, dtype=object)
    again[:50] = NSFW
    balance_kept(table, again, rule)
    assert list(again) == list(reason)  # a rerun keeps the same samples
    assert METACLIP_SAMPLED_OUT in set(reason)


def test_tail_fraction_sets_t_from_the_pool(tmp_path):
    table, truth = pool()
    reason = np.full(table.num_rows, None, dtype=object)
    rule = MetaclipBalance(metadata=metadata_file(tmp_path), tail_fraction=0.5)
    facts = balance_kept(table, reason, rule)
    assert facts["balance_t"] == p_to_t(np.array(list(COUNTS.values())), 0.5)
