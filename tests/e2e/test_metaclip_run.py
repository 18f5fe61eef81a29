"""`curate run` with the metaclip recipe on the mini web: the road finishes, every stage's stats
add up, the filter stage's draw and select's ``balance:`` keep exactly the samples the balancing
rule predicts from their pools, a rerun of the filter keeps the same uids, and report.html shows
both stages' entry-count histograms, and a rerun of select (into a new folder) keeps the same
uids."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from vlcurate import miniweb
from vlcurate.jobs import filter as filter_job
from vlcurate.jobs import selection as select_job
from vlcurate.jobs.run import main as run_main
from vlcurate.pipeline.filters.metaclip import draws, find_balance, keep_probability
from vlcurate.pipeline.recipe import BUNDLED, load_recipe
from vlcurate.pipeline.select.balance import balance_kept
from vlcurate.schemas.filter import METACLIP_SAMPLED_OUT
from vlcurate.schemas.select import METACLIP_NO_MATCH

pytestmark = [pytest.mark.spark, pytest.mark.slow]

FILTER_T, SELECT_T = 2, 2  # the mini web: ~100 pairs, most words rare: a small t caps its heads


def metaclip_test_recipe(path) -> str:
    """recipes/metaclip.yaml with a t for a tiny pool, the mini web's scorers and select's
    balance: as well (MetaCLIP's own place for it)."""
    recipe = yaml.safe_load((BUNDLED / "metaclip.yaml").read_text())
    for rule in recipe["filters"]:
        if "metaclip_balance" in rule:
            rule["metaclip_balance"]["t"] = FILTER_T
    recipe["name"] = "metaclip-test"
    recipe["download"] = {"image_size": 64, "resize_mode": "keep_ratio"}
    recipe["score"] = {"model": "tiny-clip", "pretrained": None, "watermark": "none"}
    recipe["score"].update(workers=1, batch_size=16)
    recipe["select"].update(samples_per_shard=20, balance={"t": SELECT_T, "seed": 3})
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


def drawn_uids(rows: pa.Table, rule, t) -> set[str]:
    """The uids balancing keeps among ``rows`` (the pool it drew from), computed afresh."""
    entries = rule.matcher().match_arrow(rows.column("caption"))
    counts = np.bincount(pa.compute.list_flatten(entries).to_numpy(), minlength=rule.matcher().size)
    keep = keep_probability(entries, counts, t)
    uids = rows.column("uid").to_pylist()
    return {u for u, d, p in zip(uids, draws(uids, rule.seed), keep, strict=True) if d < p}


@pytest.fixture(scope="module")
def road(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("metaclip-run")
    port = miniweb.free_port()
    miniweb.build(root / "web", seed=2, port=port, n_shapes=30)
    recipe = metaclip_test_recipe(root / "metaclip-test.yaml")
    argv = [recipe, "--input", str(root / "web" / miniweb.WARC_FILE), "--output", str(root / "out")]
    argv += ["--master", "local[2]", "--allow-private-network", f"127.0.0.1:{port}"]
    argv += ["--filter-args=--dropped", "--no-progress", "--download-args"]
    argv += ["--timeout 2 --processes 1 --threads 16 --host-concurrency 16 --host-delay 0"]
    with miniweb.serve(root / "web", port=port, slow_seconds=3):
        assert run_main(argv) == 0
    return root / "out", load_recipe(recipe)


def test_the_road_finishes_and_every_stage_adds_up(road):
    out, _ = road
    for stage in ("extract", "candidates", "shards", "scores", "final"):
        stats = json.loads((out / stage / "stats.json").read_text())
        assert stats["in"] == stats["kept"] + sum(stats["dropped"].values()), stage
    final = json.loads((out / "final" / "manifest.json").read_text())
    assert sum(s["samples"] for s in final["shards"]) == final["counts"]["kept"] > 0
    html = (out / "report.html").read_text()
    assert "<h2>MetaCLIP balancing</h2>" in html and html.count('<svg class="balance"') == 2
    assert html.index("MetaCLIP balancing") < html.index("<h2>Samples</h2>")


def test_the_filter_stage_keeps_what_balancing_predicts(spark, road):
    out, recipe = road
    stats = json.loads((out / "candidates" / "stats.json").read_text())
    facts, rule = stats["metaclip_balance"], find_balance(recipe.filters)
    assert facts["t"] == FILTER_T and facts["metadata"] == "builtin"
    assert facts["metadata_entries"] > 300_000 and stats["dropped"][METACLIP_SAMPLED_OUT] >= 5
    assert facts["matches_after"] < facts["matches_before"]
    kept = pq.read_table(out / "candidates" / "pairs")
    dropped = pq.read_table(out / "candidates" / "dropped")
    sampled_out = dropped.filter(pa.compute.equal(dropped["drop_reason"], METACLIP_SAMPLED_OUT))
    pool = pa.concat_tables(
        [kept.select(["uid", "caption"]), sampled_out.select(["uid", "caption"])]
    )
    assert facts["matches_before"] == sum(map(len, rule.matcher().match_arrow(pool["caption"])))
    assert drawn_uids(pool, rule, FILTER_T) == set(kept["uid"].to_pylist())
    again = out.parent / "filter-again"
    filter_job.run(str(out / "extract"), recipe, str(again), progress=False)
    assert json.loads((again / "stats.json").read_text())["metaclip_balance"] == facts
    assert set(pq.read_table(again / "pairs")["uid"].to_pylist()) == set(kept["uid"].to_pylist())


def test_select_balances_last_as_predicted(road):
    out, recipe = road
    selection = pq.read_table(out / "final" / "selection.parquet")
    reason = np.array(selection["reason"].to_pylist(), dtype=object)
    pool = np.isin(reason, [None, METACLIP_NO_MATCH, METACLIP_SAMPLED_OUT])
    predicted = np.where(pool, None, reason)
    facts = balance_kept(selection, predicted, recipe.select.balance)
    assert list(predicted) == list(reason)
    stats = json.loads((out / "final" / "stats.json").read_text())
    assert stats["balance"] == json.loads(json.dumps(facts["balance"]))
    assert stats["balance"]["t"] == SELECT_T and stats["balance"]["seed"] == 3
    assert int(np.sum(reason == None)) == stats["kept"] > 0  # noqa: E711 (elementwise)
    assert stats["dropped"].get(METACLIP_SAMPLED_OUT, 0) == int(
        np.sum(reason == METACLIP_SAMPLED_OUT)
    )


def _kept_uids(final) -> set[str]:
    selection = pq.read_table(final / "selection.parquet")
    return {
        u
        for u, r in zip(selection["uid"].to_pylist(), selection["reason"].to_pylist(), strict=True)
        if r is None
    }


def test_a_rerun_of_select_keeps_the_same_uids(road):
    out, _ = road
    recipe = str(out.parent / "metaclip-test.yaml")
    again = out.parent / "select-again"
    argv = ["--shards", str(out / "shards"), "--scores", str(out / "scores")]
    argv += ["--recipe", recipe, "--output", str(again), "--no-progress"]
    assert select_job.main(argv) == 0
    assert _kept_uids(again) == _kept_uids(out / "final") != set()
    first = json.loads((out / "final" / "stats.json").read_text())
    second = json.loads((again / "stats.json").read_text())
    assert second["balance"] == first["balance"] and second["dropped"] == first["dropped"]
    for facts in (
        first["balance"],
        json.loads((out / "candidates" / "stats.json").read_text())["metaclip_balance"],
    ):
        rows = facts["histogram"]
        assert sum(r["entries_before"] for r in rows) == facts["entries_matched"]
        assert sum(r["matches_before"] for r in rows) == facts["matches_before"]
        assert all(r["matches_kept"] <= r["matches_before"] for r in rows)
    assert "<h2>MetaCLIP balancing</h2>" in (again / "report.html").read_text()
