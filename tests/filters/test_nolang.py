"""LAION's no-language subset: the laion recipe keeps every caption, with ``language`` the
detected code or ``nolang``; datacomp-basic and cc3m keep their English rules."""

import pyarrow.parquet as pq
import pytest

from tests.pairs import pairs_table
from vlcurate.jobs import filter as filter_job
from vlcurate.pipeline.config import ConfigError
from vlcurate.pipeline.filters.apply import annotate
from vlcurate.pipeline.filters.language import Language
from vlcurate.pipeline.recipe import load_recipe
from vlcurate.schemas.filter import LANGUAGE_NOT_WANTED, LANGUAGE_UNCERTAIN, NOLANG

CAPTIONS = [
    "a dog",  # too short for fastText to be sure of any language
    "A black dog running on the beach at sunset",
    "Ceci est une photo de la tour Eiffel à Paris",
    "Das ist ein Foto vom Brandenburger Tor in Berlin",
]


def test_uncertain_captions_are_kept_as_nolang():
    verdict = Language(nolang_below=0.25).judge(pairs_table(*CAPTIONS))
    assert list(verdict.reasons) == [None] * 4
    assert verdict.columns["language"].to_pylist() == [NOLANG, "en", "fr", "de"]
    assert verdict.columns["language_score"].to_pylist()[0] < 0.25  # its real score stays
    # without nolang_below the same caption is dropped, as before
    assert Language(min_score=0.25).judge(pairs_table("a dog")).reasons[0] == LANGUAGE_UNCERTAIN
    # keep may name the subset like any code
    keep = Language(nolang_below=0.25, keep=["en", NOLANG]).judge(pairs_table(*CAPTIONS))
    assert list(keep.reasons) == [None, None, LANGUAGE_NOT_WANTED, LANGUAGE_NOT_WANTED]


def test_min_score_and_nolang_below_are_not_both_given():
    with pytest.raises(ConfigError, match="filters.language: give min_score .* not both"):
        Language(min_score=0.25, nolang_below=0.25)
    with pytest.raises(ConfigError, match="filters.language.nolang_below: 2 is not allowed"):
        Language(nolang_below=2)


def test_the_laion_recipe_keeps_a_dog_and_the_english_recipes_do_not():
    table = pairs_table(*CAPTIONS)
    laion = annotate(table, load_recipe("laion").rules)
    assert laion.column("drop_reason").to_pylist() == [None] * 4
    assert laion.column("language").to_pylist()[0] in (NOLANG, "en")
    assert laion.column("language").to_pylist()[1:] == ["en", "fr", "de"]
    for english in ("datacomp-basic", "cc3m"):
        rules = {rule.name: rule for rule in load_recipe(english).filters}
        assert rules["language"].keep == ["en"] and rules["language"].nolang_below is None


@pytest.mark.spark
def test_the_laion_filter_job_counts_every_caption(spark, tmp_path):
    folder = tmp_path / "pairs"
    folder.mkdir()
    pq.write_table(pairs_table(*CAPTIONS, "a cat"), folder / "part-0.parquet")
    stats = filter_job.run(str(tmp_path), load_recipe("laion"), str(tmp_path / "out"))
    assert stats["in"] == 5 and stats["in"] == stats["kept"] + sum(stats["dropped"].values())
    assert stats["kept"] == 5 and LANGUAGE_UNCERTAIN not in stats["dropped"]
    kept = pq.read_table(tmp_path / "out" / "pairs").to_pylist()
    language = {row["caption"]: row["language"] for row in kept}
    assert language["a dog"] in (NOLANG, "en") and language[CAPTIONS[2]] == "fr"
    assert stats["rules"]["language"]["nolang_below"] == 0.25
