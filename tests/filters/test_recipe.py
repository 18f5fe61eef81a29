import re
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tests.pairs import pairs_table
from vlcurate.pipeline.filters.apply import ANNOTATED_SCHEMA, annotate
from vlcurate.pipeline.filters.base import Filter
from vlcurate.pipeline.recipe import RecipeError, bundled_recipes, load_recipe, parse_recipe
from vlcurate.pipeline.verdict import Verdict, first_reason
from vlcurate.schemas.filter import CAPTION_EMPTY, LANGUAGE_NOT_WANTED, TOO_FEW_CHARS, TOO_FEW_WORDS


def reasons(table):
    return table.column("drop_reason").to_pylist()


def test_bundled_recipes_load_and_cite_a_source():
    assert {"laion", "datacomp-basic"} <= set(bundled_recipes())
    for name in bundled_recipes():
        recipe = load_recipe(name)
        assert recipe.source and recipe.filters[0].name == "caption_valid"


def test_datacomp_basic_exactly_as_published():
    """English by fastText, more than 2 words, more than 5 characters."""
    recipe = load_recipe("datacomp-basic")
    table = pairs_table(
        "A dog",  # 5 characters
        "Dog at sea",  # 10 characters, 3 words, English
        "Two words",  # 9 characters, 2 words
        "A black dog running on the beach",
        "Un chien noir qui court sur la plage",
        "",
    )
    assert reasons(annotate(table, recipe)) == [
        TOO_FEW_CHARS,
        None,
        TOO_FEW_WORDS,
        None,
        LANGUAGE_NOT_WANTED,
        CAPTION_EMPTY,
    ]
    assert {f.name for f in recipe.filters} == {
        "caption_valid",
        "char_length",
        "word_count",
        "language",
    }
    assert recipe.dedup.uid and recipe.dedup.max_per_url is None


def test_first_rule_in_recipe_order_is_recorded():
    table = pairs_table("Hi")  # too few characters and too few words
    chars_first = parse_recipe(
        {
            "name": "a",
            "version": 1,
            "source": "t",
            "filters": [{"char_length": {"min": 5}}, {"word_count": {"min": 3}}],
        }
    )
    words_first = parse_recipe(
        {
            "name": "b",
            "version": 1,
            "source": "t",
            "filters": [{"word_count": {"min": 3}}, {"char_length": {"min": 5}}],
        }
    )
    assert reasons(annotate(table, chars_first)) == [TOO_FEW_CHARS]
    assert reasons(annotate(table, words_first)) == [TOO_FEW_WORDS]


def test_annotated_table_has_the_schema_and_language_only_where_reached():
    recipe = load_recipe("datacomp-basic")
    out = annotate(pairs_table("A dog", "A black dog running on the beach"), recipe)
    assert out.schema.equals(ANNOTATED_SCHEMA, check_metadata=False)
    assert out.column("language").to_pylist() == [None, "en"]
    assert out.column("recipe").to_pylist() == ["datacomp-basic/1"] * 2


@dataclass
class Shout(Filter):
    """A rewriting rule, for the test: upper-cases captions that contain 'crop me'."""

    name = "test_shout"
    reasons = ("test_never",)

    def judge(self, table):
        caption = table.column("caption")
        rewritten = pc.if_else(
            pc.match_substring(caption, "crop me"), pc.utf8_upper(caption), caption
        )
        return Verdict(first_reason(table.num_rows), {"caption": rewritten})


def test_rewrites_keep_the_original_and_feed_later_rules():
    recipe = parse_recipe(
        {
            "name": "r",
            "version": 2,
            "source": "t",
            "filters": ["test_shout", {"junk_caption": {"generic": ["CROP ME"]}}],
        }
    )
    out = annotate(pairs_table("crop me", "a cat, crop me", "untouched caption"), recipe)
    assert out.column("caption").to_pylist() == ["CROP ME", "A CAT, CROP ME", "untouched caption"]
    assert out.column("caption_original").to_pylist() == ["crop me", "a cat, crop me", None]
    assert reasons(out) == ["caption_is_generic", None, None]


BASE = {"name": "x", "version": 1, "source": "s", "filters": []}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"name": "x", "version": 1, "source": "s", "filters": [], "colour": "red"},
            "unknown key 'colour'",
        ),
        (
            {"name": "x", "version": 1, "source": "s", "filters": ["no_such_rule"]},
            "unknown filter 'no_such_rule'",
        ),
        (
            {
                "name": "x",
                "version": 1,
                "source": "s",
                "filters": [{"char_length": {"minimum": 3}}],
            },
            "unknown parameter 'minimum'",
        ),
        ({"name": "x", "version": 1, "filters": []}, "missing key 'source'"),
        (
            {"name": "x", "version": 1, "source": "s", "filters": [], "dedup": {"urls": 1}},
            "unknown parameter 'urls'",
        ),
        (
            {"name": "x", "version": 1, "source": "s", "filters": [{"a": 1, "b": 2}]},
            "write a filter as",
        ),
        (["not", "a", "mapping"], "a recipe is a mapping"),
        ({**BASE, "select": {"clip_minimum": 0.3}}, "select: unknown parameter 'clip_minimum'"),
        ({**BASE, "select": {"dedup": {"phash": 3}}}, "select: dedup: unknown parameter 'phash'"),
        ({**BASE, "select": {"faces": "hide"}}, "select.faces: 'hide' is not allowed"),
        ({**BASE, "select": {"clip_min": 0.2, "clip_top_fraction": 0.3}}, "not both"),
        ({**BASE, "score": {"modle": "ViT-B-32"}}, "score: unknown parameter 'modle'"),
    ],
)
def test_bad_recipes_fail_naming_the_problem(data, message):
    with pytest.raises(RecipeError, match=message):
        parse_recipe(data)


def test_recipe_files_and_names(tmp_path):
    with pytest.raises(RecipeError, match="no recipe 'nope'"):
        load_recipe("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(str(bad))
    good = tmp_path / "mine.yaml"
    good.write_text("name: mine\nversion: 3\nsource: me\nfilters:\n  - char_length: {min: 2}\n")
    assert load_recipe(str(good)).ident == "mine/3"


def test_null_and_nul_captions_do_not_crash_any_recipe():
    table = pairs_table(None, "bad\x00caption", "x" * 200_000, "A fine caption about a dog")
    for name in bundled_recipes():
        out = annotate(table, load_recipe(name))
        assert reasons(out)[:3] == ["caption_empty", "caption_control_chars", "caption_oversized"]
        assert isinstance(out, pa.Table)


def rule(name: str, **params) -> dict:
    return {**BASE, "filters": [{name: params}]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            rule("char_length", min=50, max=10),
            "filters.char_length.min: 50 is not allowed (at most max, 10)",
        ),
        (rule("char_length", min=-1), "filters.char_length.min: -1 is not allowed"),
        (rule("word_count", min=5, max=2), "filters.word_count.min: 5 is not allowed (at most max"),
        (rule("word_count", max="many"), "filters.word_count.max: 'many' is not allowed"),
        (rule("language", keep="en"), "filters.language.keep: 'en' is not allowed (a list of"),
        (rule("language", keep=[3]), "filters.language.keep: [3] is not allowed"),
        (rule("language", min_score=1.5), "filters.language.min_score: 1.5 is not allowed"),
        (rule("language", max_chars=0), "filters.language.max_chars: 0 is not allowed"),
        (rule("caption_valid", max_bytes=0), "filters.caption_valid.max_bytes: 0 is not allowed"),
        (rule("junk_caption", generic="image"), "filters.junk_caption.generic: 'image' is not"),
        (rule("junk_caption", urls="yes"), "filters.junk_caption.urls: 'yes' is not allowed"),
        (rule("image_extension", allowed="jpg"), "filters.image_extension.allowed: 'jpg' is not"),
        (rule("url_junk_words", words="logo"), "filters.url_junk_words.words: 'logo' is not"),
        (rule("tracking_pixel", max_side=-1), "filters.tracking_pixel.max_side: -1 is not"),
        (rule("declared_size", min_side=-5), "filters.declared_size.min_side: -5 is not"),
        (rule("boilerplate_crop", patterns="x"), "filters.boilerplate_crop.patterns: 'x' is not"),
        (rule("capitalisation", max_capital_ratio=2), "filters.capitalisation.max_capital_ratio"),
        (rule("capitalisation", min_words=1), "filters.capitalisation.min_words: 1 is not"),
        (rule("token_repetition", min_unique_ratio=-0.1), "token_repetition.min_unique_ratio"),
        (rule("token_repetition", min_words=0), "filters.token_repetition.min_words: 0 is not"),
        (rule("vocabulary", min_coverage=1.1), "filters.vocabulary.min_coverage: 1.1 is not"),
        (rule("profanity", extra_words="damn"), "filters.profanity.extra_words: 'damn' is not"),
        (rule("part_of_speech", require_any=["NOUN"]), "filters.part_of_speech.require_any"),
        (rule("part_of_speech", batch_size=0), "filters.part_of_speech.batch_size: 0 is not"),
        (rule("hypernymise", drop_types="ORG"), "filters.hypernymise.drop_types: 'ORG' is not"),
        ({**BASE, "dedup": {"max_per_url": 0}}, "dedup.max_per_url: 0 is not allowed"),
        ({**BASE, "dedup": {"uid": "yes"}}, "dedup.uid: 'yes' is not allowed"),
        ({**BASE, "version": "one"}, "version: 'one' is not allowed"),
        ({**BASE, "filters": {"char_length": {}}}, "filters: write a list"),
        ({**BASE, "download": {"image_size": "big"}}, "download.image_size: 'big' is not allowed"),
        ({**BASE, "score": {"batch_size": 2.5}}, "score.batch_size: 2.5 is not allowed"),
        ({**BASE, "download": "big"}, "download: parameters must be a mapping"),
    ],
)
def test_bad_values_fail_naming_the_field(data, message):
    with pytest.raises(RecipeError, match=re.escape(message)) as raised:
        parse_recipe(data, "r.yaml")
    assert str(raised.value).startswith("r.yaml: ") and "\n" not in str(raised.value)


def test_download_and_score_sections_are_typed_configs():
    from vlcurate.pipeline.download.config import DownloadConfig
    from vlcurate.pipeline.score.config import ScoreConfig

    recipe = load_recipe("laion")
    assert isinstance(recipe.download, DownloadConfig) and recipe.download.image_size == 384
    assert isinstance(recipe.score, ScoreConfig) and recipe.score.pretrained == "openai"
    bare = parse_recipe(BASE)
    assert bare.download == DownloadConfig() and bare.score == ScoreConfig()


def test_a_yaml_error_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nfilters:\n  - char_length: {min: 3\n")
    with pytest.raises(RecipeError, match="not valid YAML") as raised:
        load_recipe(str(bad))
    assert "\n" not in str(raised.value) and "line" in str(raised.value)
