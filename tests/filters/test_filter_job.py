"""The Spark filter job: stats identity, dedup across partitions, dropped sink, bad recipes."""

import json

import pyarrow.parquet as pq
import pytest

from tests.pairs import pairs_table
from vlcurate.jobs import extract as extract_job
from vlcurate.jobs import filter as filter_job
from vlcurate.pipeline.extract.page import pair_uid
from vlcurate.pipeline.extract.stage import ExtractConfig
from vlcurate.pipeline.recipe import load_recipe, parse_recipe
from vlcurate.pipeline.storage import expand_inputs
from vlcurate.schemas.filter import CANDIDATE_SCHEMA, DUPLICATE_UID, DUPLICATE_URL

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def extracted(spark, warcs, tmp_path_factory):
    out = tmp_path_factory.mktemp("extracted")
    extract_job.run(
        expand_inputs([str(warcs / "*.warc*")]), str(out), ExtractConfig(), progress=False
    )
    return out


@pytest.mark.parametrize("recipe", ["laion", "datacomp-basic", "cc3m"])
def test_recipes_on_extracted_pairs(extracted, tmp_path, recipe):
    stats = filter_job.run(
        str(extracted), load_recipe(recipe), str(tmp_path / "c"), write_dropped=True
    )
    assert stats["in"] == 294 and stats["in"] == stats["kept"] + sum(stats["dropped"].values())
    assert json.loads((tmp_path / "c" / "stats.json").read_text()) == stats
    kept = pq.read_table(tmp_path / "c" / "pairs")
    dropped = pq.read_table(tmp_path / "c" / "dropped")
    assert kept.num_rows == stats["kept"] and dropped.num_rows == sum(stats["dropped"].values())
    assert set(CANDIDATE_SCHEMA.names) == set(kept.schema.names)
    by_reason = {}
    for reason in dropped.column("drop_reason").to_pylist():
        by_reason[reason] = by_reason.get(reason, 0) + 1
    assert by_reason == stats["dropped"]
    assert len(set(kept.column("uid").to_pylist())) == kept.num_rows  # no duplicate uid survives
    assert set(kept.column("recipe").to_pylist()) == {f"{recipe}/{load_recipe(recipe).version}"}
    expected_kept = {"laion": 124, "datacomp-basic": 56, "cc3m": 7}[recipe]  # README's funnel
    assert stats["kept"] == expected_kept


def _spread(tmp_path, tables):
    """Write each table as its own parquet file: Spark reads them as separate partitions."""
    folder = tmp_path / "pairs"
    folder.mkdir()
    for i, table in enumerate(tables):
        pq.write_table(table, folder / f"part-{i}.parquet")
    return folder


def test_dedup_across_partitions_keeps_the_first_in_input_order(spark, tmp_path):
    url = "https://example.com/same.jpg"
    caption = "A red bicycle leaning against a wall"
    # The same (caption, url) appears in three files; the earliest copy is in the *last* file.
    late = pairs_table(
        caption,
        "Another photo of the red bicycle",
        urls=[url, url],
        warc_path=["b.warc.gz", "b.warc.gz"],
        warc_offset=[10, 20],
    )
    middle = pairs_table(caption, urls=[url], warc_path=["c.warc.gz"], warc_offset=[5])
    first = pairs_table(
        caption,
        "A third caption for the same red bicycle",
        urls=[url, url],
        warc_path=["a.warc.gz", "a.warc.gz"],
        warc_offset=[99, 100],
    )
    folder = _spread(tmp_path, [late, middle, first])
    recipe = parse_recipe(
        {
            "name": "d",
            "version": 1,
            "source": "t",
            "filters": [],
            "dedup": {"uid": True, "max_per_url": 2},
        }
    )
    stats = filter_job.run(str(folder), recipe, str(tmp_path / "out"), write_dropped=True)
    assert (stats["in"], stats["kept"]) == (5, 2)
    assert stats["dropped"] == {DUPLICATE_UID: 2, DUPLICATE_URL: 1}
    kept = pq.read_table(tmp_path / "out" / "pairs").sort_by(
        [("warc_path", "ascending"), ("warc_offset", "ascending")]
    )
    assert list(
        zip(
            kept.column("warc_path").to_pylist(),
            kept.column("warc_offset").to_pylist(),
            strict=True,
        )
    ) == [("a.warc.gz", 99), ("a.warc.gz", 100)]
    assert kept.column("uid").to_pylist()[0] == pair_uid(caption, url)


def test_url_dedup_off_and_uid_dedup_off(spark, tmp_path):
    url = "https://example.com/same.jpg"
    folder = _spread(
        tmp_path,
        [pairs_table("A red bicycle by a wall", "A red bicycle by a wall", urls=[url, url])],
    )
    recipe = parse_recipe(
        {
            "name": "d",
            "version": 1,
            "source": "t",
            "filters": [],
            "dedup": {"uid": False, "max_per_url": None},
        }
    )
    assert filter_job.run(str(folder), recipe, str(tmp_path / "out"))["kept"] == 2


def test_rerun_replaces_the_output(spark, extracted, tmp_path):
    first = filter_job.run(str(extracted), load_recipe("laion"), str(tmp_path / "c"))
    again = filter_job.run(str(extracted), load_recipe("laion"), str(tmp_path / "c"))
    assert (first["kept"], first["dropped"]) == (again["kept"], again["dropped"])
    assert pq.read_table(tmp_path / "c" / "pairs").num_rows == again["kept"]


def test_bad_recipe_or_input_fails_before_spark_work(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nversion: 1\nsource: s\nfilters:\n  - lenght: {min: 3}\n")
    assert (
        filter_job.main(
            ["--input", str(tmp_path), "--recipe", str(bad), "--output", str(tmp_path / "o")]
        )
        == 2
    )
    assert "unknown filter 'lenght'" in capsys.readouterr().err
    assert (
        filter_job.main(
            [
                "--input",
                str(tmp_path / "nope"),
                "--recipe",
                "laion",
                "--output",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "input not found" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_empty_input_gives_empty_output(spark, tmp_path):
    folder = _spread(tmp_path, [pairs_table()])
    stats = filter_job.run(str(folder), load_recipe("laion"), str(tmp_path / "out"))
    assert (stats["in"], stats["kept"], stats["dropped"]) == (0, 0, {})
    assert pq.read_table(tmp_path / "out" / "pairs").num_rows == 0
