"""LAION-5B's three language subsets in ``select: languages:``: English, multilingual (any
identified language but English) and nolang; every drop counted as ``language``."""

import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.pairs import KEEP_ALL
from vlcurate.pipeline.config import ConfigError
from vlcurate.pipeline.recipe import parse_recipe
from vlcurate.pipeline.select.config import SelectConfig
from vlcurate.pipeline.select.rules import Languages, rules_for
from vlcurate.pipeline.select.stage import select
from vlcurate.schemas.filter import NOLANG
from vlcurate.schemas.select import LANGUAGE, MULTILINGUAL

CODES = ["en", "fr", NOLANG, None, "de", "en"]


def kept(keep) -> list[str | None]:
    table = pa.table({"language": pa.array(CODES, pa.string())})
    reasons = Languages(tuple(keep)).judge(table).reasons
    assert set(reasons) <= {None, LANGUAGE}
    return [code for code, reason in zip(CODES, reasons, strict=True) if reason is None]


def test_each_subset_and_their_unions():
    assert kept(["en"]) == ["en", "en"]
    assert kept([NOLANG]) == [NOLANG]
    assert kept([MULTILINGUAL]) == ["fr", "de"]
    assert kept([MULTILINGUAL, NOLANG]) == ["fr", NOLANG, "de"]
    assert kept(["en", MULTILINGUAL, NOLANG]) == ["en", "fr", NOLANG, "de", "en"]  # null: none
    assert kept(["de"]) == ["de"]


def test_a_single_subset_may_be_written_without_a_list():
    assert SelectConfig(languages=NOLANG).languages == [NOLANG]
    config = SelectConfig(languages="en")
    assert isinstance(rules_for(config, "clip", None).rules[1], Languages)
    with pytest.raises(ConfigError, match="select.languages: 3 is not allowed"):
        SelectConfig(languages=3)


def _relabelled(root, tmp_path):
    """A copy of the scored mini web whose shard parquets carry LAION-style languages."""
    copy = tmp_path / "in"
    shutil.copytree(root / "shards", copy / "shards")
    shutil.copytree(root / "scores", copy / "scores")
    cycle = ["en", NOLANG, "fr", "en", "ja"]
    for path in sorted((copy / "shards").glob("*.parquet")):
        table = pq.read_table(path)
        labels = [cycle[i % len(cycle)] for i in range(table.num_rows)]
        index = table.schema.get_field_index("language")
        table = table.set_column(index, "language", pa.array(labels, pa.string()))
        pq.write_table(table, path)
    return copy


@pytest.mark.spark
@pytest.mark.slow
def test_select_keeps_the_chosen_subsets_and_counts_the_rest(scored_miniweb, tmp_path):
    root = _relabelled(scored_miniweb[0], tmp_path)
    counts = {}
    for name, languages in (("en", ["en"]), ("nolang", NOLANG), ("multi", [MULTILINGUAL])):
        recipe = parse_recipe({**KEEP_ALL, "select": {"languages": languages}})
        out = tmp_path / name
        stats = select(str(root / "shards"), str(root / "scores"), recipe, str(out), progress=False)
        assert stats["in"] == stats["kept"] + sum(stats["dropped"].values())
        rows = pq.read_table(out / "selection.parquet").to_pylist()
        chosen = {"en": {"en"}, "nolang": {NOLANG}, "multi": {"fr", "ja"}}[name]
        assert all(r["reason"] == LANGUAGE for r in rows if r["language"] not in chosen)
        assert all(r["reason"] != LANGUAGE for r in rows if r["language"] in chosen)
        counts[name] = stats
    total = counts["en"]["in"]
    language_drops = sum(c["dropped"].get(LANGUAGE, 0) for c in counts.values())
    assert language_drops == 2 * total  # each sample is in exactly one of the three subsets
