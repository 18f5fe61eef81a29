"""MetaCLIP balancing in Spark: the per-entry counting job against a Python count, and the
filter job with a ``metaclip_balance`` rule (stats add up, heads capped, reruns agree)."""

import json
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.filters.metaclip_pool import COUNTS, check_histogram, metadata_file, pool
from vlcurate.jobs import filter as filter_job
from vlcurate.jobs.balance import entry_counts
from vlcurate.pipeline.filters.metaclip import DRAW_RULE, MetaclipBalance
from vlcurate.pipeline.recipe import parse_recipe
from vlcurate.schemas.filter import METACLIP_NO_MATCH, METACLIP_SAMPLED_OUT

pytestmark = pytest.mark.spark


def test_spark_counts_equal_a_python_count(spark, tmp_path):
    entries = ["dog", "hot dog", "cat", "red", "new york", "never"]
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps(entries))
    rule = MetaclipBalance(metadata=str(path), t=10)
    words = ["a", "hot", "dog", "cat,", "red", "New", "York.", "the"]
    captions = [" ".join(words[(i * k) % len(words)] for k in range(i % 9)) for i in range(300)]
    reasons = [None if i % 5 else "too_few_chars" for i in range(300)]
    table = pa.table({"caption": captions, "drop_reason": pa.array(reasons, pa.string())})
    frame = spark.createDataFrame(table.to_pandas()).repartition(3)
    counts = entry_counts(frame, rule)
    expected = Counter()
    for caption, reason in zip(captions, reasons, strict=True):
        if reason is None:
            expected.update(rule.matcher().match(caption))
    assert counts.tolist() == [expected[i] for i in range(len(entries))]
    assert counts.sum() > 100 and counts[-1] == 0


def _run(tmp_path, table, name, meta, t, seed=0):
    folder = tmp_path / f"in-{name}"
    folder.mkdir(exist_ok=True)
    half = table.num_rows // 2
    pq.write_table(table.slice(0, half), folder / "part-0.parquet")
    pq.write_table(table.slice(half), folder / "part-1.parquet")
    params = {"metadata": meta, "t": t, "seed": seed}
    recipe = parse_recipe(
        {
            "name": "mc",
            "version": 1,
            "source": "test",
            "filters": [{"char_length": {"min": 3}}, {"metaclip_balance": params}],
            "dedup": {"uid": True, "max_per_url": None},
        }
    )
    out = tmp_path / f"out-{name}"
    stats = filter_job.run(str(folder), recipe, str(out), write_dropped=True, progress=False)
    return stats, pq.read_table(out / "pairs"), pq.read_table(out / "dropped")


def test_filter_job_balances_the_pool(spark, tmp_path):
    t = 150
    table, truth = pool(no_entry=40, seed=1)
    table = pa.concat_tables([table, table.slice(0, 25)])  # 25 exact duplicates
    meta = metadata_file(tmp_path)
    stats, kept, dropped = _run(tmp_path, table, "a", meta, t)
    assert stats["in"] == table.num_rows == stats["kept"] + sum(stats["dropped"].values())
    repeated_none = truth[:25].count(None)  # the rule drops a copy before the dedup sees it
    assert stats["dropped"][METACLIP_NO_MATCH] == 40 + repeated_none
    assert stats["dropped"]["duplicate_uid"] == 25 - repeated_none
    assert stats["dropped"][METACLIP_SAMPLED_OUT] == len(
        dropped.filter(pa.compute.equal(dropped.column("drop_reason"), METACLIP_SAMPLED_OUT))
    )
    assert stats["rule_order"][-1] == DRAW_RULE and kept.num_rows == stats["kept"]
    entry_of = dict(zip(table.column("uid").to_pylist(), truth + truth[:25], strict=True))
    per_entry = Counter(entry_of[u] for u in kept.column("uid").to_pylist())
    for entry, n in COUNTS.items():
        if n <= t:
            assert per_entry[entry] == n, entry
        else:
            assert abs(per_entry[entry] - t) <= 4 * (t * (1 - t / n)) ** 0.5, entry
    facts = stats["metaclip_balance"]  # what the draw used and did, counted in Spark
    assert (facts["t"], facts["seed"], facts["metadata"]) == (t, 0, meta)
    assert facts["metadata_entries"] == len(COUNTS) + 1 and facts["entries_matched"] == len(COUNTS)
    deduplicated = Counter(entry_of[u] for u in dict.fromkeys(table.column("uid").to_pylist()))
    assert facts["matches_before"] == sum(n for e, n in deduplicated.items() if e is not None)
    assert facts["matches_after"] == kept.num_rows  # every kept caption matches one entry
    bins = {r["bin"]: r for r in facts["histogram"]}
    assert (
        bins["1,001-10,000"]["entries_before"] == 1 and bins["1,001-10,000"]["entries_after"] == 0
    )
    assert sum(r["entries_after"] for r in facts["histogram"]) == len(COUNTS)
    check_histogram(facts)
    assert json.loads((tmp_path / "out-a" / "stats.json").read_text())["metaclip_balance"] == facts
    again, kept_again, _ = _run(tmp_path, table, "b", meta, t)
    assert again["dropped"] == stats["dropped"]
    assert sorted(kept_again.column("uid").to_pylist()) == sorted(kept.column("uid").to_pylist())
