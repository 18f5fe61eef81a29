"""The select section's settings check their types and ranges when loaded: one line naming the
field, the value and what is allowed, from code, from a recipe, and as exit code 2 of `curate
select`, before any work."""

import pytest
import yaml

from vlcurate.jobs import selection as select_job
from vlcurate.pipeline.config import ConfigError
from vlcurate.pipeline.recipe import RecipeError, parse_recipe
from vlcurate.pipeline.select.config import ImageDedup, SelectConfig

KEEP_ALL = {"name": "keep-all", "version": 1, "source": "test", "filters": []}

BAD_SELECT = [
    ({"clip_min": 5}, "select.clip_min: 5 is not allowed (a number >= -1 and <= 1, or null)"),
    ({"clip_min": -1.5}, "select.clip_min: -1.5 is not allowed (a number >= -1 and <= 1"),
    ({"clip_min": "high"}, "select.clip_min: 'high' is not allowed (a number or null)"),
    ({"nsfw_max": -1}, "select.nsfw_max: -1 is not allowed (a number >= 0 and <= 1, or null)"),
    ({"nsfw_max": 1.5}, "select.nsfw_max: 1.5 is not allowed"),
    ({"watermark_max": 2}, "select.watermark_max: 2 is not allowed (a number >= 0 and <= 1"),
    ({"clip_top_fraction": 0}, "select.clip_top_fraction: 0 is not allowed (a number > 0 and"),
    ({"clip_top_fraction": 1.2}, "select.clip_top_fraction: 1.2 is not allowed"),
    ({"samples_per_shard": 2.5}, "select.samples_per_shard: 2.5 is not allowed (an integer)"),
    ({"samples_per_shard": 0}, "select.samples_per_shard: 0 is not allowed (an integer >= 1)"),
    ({"samples_per_shard": "many"}, "select.samples_per_shard: 'many' is not allowed"),
    ({"min_side": -3}, "select.min_side: -3 is not allowed (an integer >= 1, or null)"),
    ({"max_aspect_ratio": 0.5}, "select.max_aspect_ratio: 0.5 is not allowed (a number >= 1"),
    ({"languages": 3}, "select.languages: 3 is not allowed (a list of text or null)"),
    ({"faces": "hide"}, "select.faces: 'hide' is not allowed (one of keep, drop, blur)"),
    ({"clip_min": 0.2, "clip_top_fraction": 0.3}, "select: give clip_min or clip_top_fraction"),
]
BAD_DEDUP = [
    ({"phash_max_distance": 65}, "select.dedup.phash_max_distance: 65 is not allowed (an integer"),
    ({"phash_max_distance": -1}, "select.dedup.phash_max_distance: -1 is not allowed"),
    ({"phash_min_cosine": 1.5}, "select.dedup.phash_min_cosine: 1.5 is not allowed (a number >="),
    ({"semantic_min_cosine": -2}, "select.dedup.semantic_min_cosine: -2 is not allowed"),
    ({"neighbors": 0}, "select.dedup.neighbors: 0 is not allowed (an integer >= 1)"),
    ({"index": "hnsw"}, "select.dedup.index: 'hnsw' is not allowed (one of auto, flat, ivf)"),
    ({"nprobe": 0}, "select.dedup.nprobe: 0 is not allowed"),
    ({"exact": "yes"}, "select.dedup.exact: 'yes' is not allowed (true or false)"),
]


@pytest.mark.parametrize("values, message", BAD_SELECT)
def test_select_values_out_of_range_are_refused_naming_the_field(values, message):
    with pytest.raises(ConfigError) as caught:
        SelectConfig(**values)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("values, message", BAD_DEDUP)
def test_dedup_values_out_of_range_are_refused_naming_the_field(values, message):
    with pytest.raises(ConfigError) as caught:
        ImageDedup(**values)
    assert str(caught.value).startswith(message)
    with pytest.raises(ConfigError, match="select.dedup."):
        SelectConfig(dedup=values)


def test_bounds_themselves_are_allowed():
    SelectConfig(clip_min=-1, nsfw_max=0, watermark_max=1, clip_model="ViT-B-32")
    SelectConfig(clip_min=1, nsfw_max=1, samples_per_shard=1, min_side=1, max_aspect_ratio=1)
    SelectConfig(clip_top_fraction=1, languages=["en", "de"], faces="blur")
    SelectConfig(dedup={"phash_max_distance": 0, "phash_min_cosine": -1})
    SelectConfig(dedup=ImageDedup(phash_max_distance=64, semantic_min_cosine=1))


@pytest.mark.parametrize("values, message", BAD_SELECT[:4] + BAD_DEDUP[:1])
def test_a_recipe_with_a_bad_value_fails_on_loading(values, message):
    section = {"dedup": values} if "dedup" in message else values
    with pytest.raises(RecipeError) as caught:
        parse_recipe({**KEEP_ALL, "select": section})
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "section, message",
    [
        ({"clip_min": 5}, "select.clip_min: 5 is not allowed"),
        ({"samples_per_shard": 2.5}, "select.samples_per_shard: 2.5 is not allowed"),
        ({"clip_min": "high"}, "select.clip_min: 'high' is not allowed"),
    ],
)
def test_curate_select_exits_2_with_one_line_before_any_work(tmp_path, capsys, section, message):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(yaml.safe_dump({**KEEP_ALL, "select": section}))
    out = tmp_path / "out"
    argv = ["--shards", str(tmp_path / "no-shards"), "--scores", str(tmp_path / "no-scores")]
    code = select_job.main([*argv, "--recipe", str(recipe), "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert not out.exists()


def test_curate_select_refuses_clusters_below_one(tmp_path, capsys):
    argv = ["--shards", "s", "--scores", "s", "--recipe", "demo", "--output", str(tmp_path / "o")]
    assert select_job.main([*argv, "--clusters", "0"]) == 2
    assert "--clusters: 0 is not allowed" in capsys.readouterr().err
