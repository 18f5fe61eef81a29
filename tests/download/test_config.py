"""The download settings check their values: a bad value from code, a flag or a recipe is
refused with one line naming the field, the value and what is allowed (rc 2 from the command),
before any work."""

import math

import pyarrow.parquet as pq
import pytest

from tests.pairs import pairs_table
from vlcurate.jobs.download import main
from vlcurate.pipeline.config import ConfigError
from vlcurate.pipeline.download.config import DISTRIBUTORS, RESIZE_MODES, DownloadConfig
from vlcurate.pipeline.download.safety import SafetyConfig
from vlcurate.pipeline.recipe import RecipeError, parse_recipe


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("image_size", -256, "an integer >= 1"),
        ("image_size", 0, "an integer >= 1"),
        ("threads", -4, "an integer >= 0"),
        ("processes", -1, "an integer >= 0"),
        ("timeout", -1, "a number > 0"),
        ("timeout", 0, "a number > 0"),
        ("max_image_bytes", 0, "an integer >= 1"),
        ("host_concurrency", 0, "an integer >= 1"),
        ("host_delay", -0.1, "a number >= 0"),
        ("retries", -1, "an integer >= 0"),
        ("samples_per_shard", 0, "an integer >= 1"),
        ("samples_per_shard", 2.5, "an integer"),
        ("encode_quality", 0, "an integer >= 1 and <= 100"),
        ("encode_quality", 101, "an integer >= 1 and <= 100"),
        ("min_image_size", -1, "an integer >= 0"),
        ("max_image_area", 0, "an integer >= 1"),
        ("max_aspect_ratio", 0.5, "a number >= 1"),
        ("resize_mode", "stretch", "one of no, border, keep_ratio"),
        ("distributor", "ray", "one of multiprocessing, pyspark"),
        ("image_size", "big", "an integer"),
    ],
)
def test_a_value_out_of_range_is_refused_naming_field_value_and_range(name, value, allowed):
    with pytest.raises(ConfigError) as error:
        DownloadConfig(**{name: value})
    message = str(error.value)
    assert message.startswith(f"download.{name}: {value!r} is not allowed (")
    assert allowed in message and "\n" not in message


def test_the_edges_of_each_range_are_allowed():
    DownloadConfig()
    DownloadConfig(image_size=1, threads=0, processes=0, timeout=1, retries=0)
    DownloadConfig(samples_per_shard=1, encode_quality=1, min_image_size=0, max_aspect_ratio=1)
    DownloadConfig(encode_quality=100, max_aspect_ratio=math.inf, max_image_area=1)
    for mode in RESIZE_MODES:
        DownloadConfig(resize_mode=mode)
    for distributor in DISTRIBUTORS:
        DownloadConfig(distributor=distributor)


@pytest.mark.parametrize(
    ("settings", "start"),
    [
        ({"allowed_ports": [0]}, "safety.allowed_ports: 0 is not allowed"),
        ({"allowed_ports": [70000]}, "safety.allowed_ports: 70000 is not allowed"),
        ({"allow_networks": ["nonsense"]}, "safety.allow_networks: 'nonsense' is not allowed"),
        ({"allow_networks": ["127.0.0.1:0"]}, "safety.allow_networks: '127.0.0.1:0'"),
        ({"allow_networks": ["[::1]:99999"]}, "safety.allow_networks: '[::1]:99999'"),
    ],
)
def test_bad_safety_settings_are_refused(settings, start):
    with pytest.raises(ConfigError, match="^" + start.replace("[", r"\[").replace("]", r"\]")):
        SafetyConfig(**settings)


def test_good_safety_settings_pass():
    SafetyConfig(allowed_ports=[1, 65535], allow_networks=["127.0.0.0/8", "127.0.0.1:8765"])
    SafetyConfig(allow_networks=["[::1]:8765", "::1/128", "10.1.2.3"])


def exit_code(argv: list[str]) -> int:
    """What ``curate download ARGV`` exits with (a job may return it or raise SystemExit)."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


@pytest.mark.parametrize(
    "flags",
    [
        ["--threads", "-4"],
        ["--timeout", "-1"],
        ["--samples-per-shard", "0"],
        ["--image-size", "-256"],
        ["--encode-quality", "101"],
        ["--resize-mode", "stretch"],
        ["--allowed-ports", "0"],
        ["--allow-private-network", "nonsense"],
    ],
)
def test_the_command_refuses_a_bad_flag_in_one_line_before_any_work(flags, tmp_path, capsys):
    candidates = tmp_path / "candidates.parquet"
    pq.write_table(pairs_table("a cat"), candidates)
    out = tmp_path / "shards"
    assert exit_code(["--input", str(candidates), "--output", str(out), *flags]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert captured.out == "" and not out.exists()


@pytest.mark.parametrize(
    ("download", "field"),
    [
        ({"image_size": -256}, "download.image_size: -256"),
        ({"samples_per_shard": 2.5}, "download.samples_per_shard: 2.5"),
        ({"timeout": 0}, "download.timeout: 0"),
        ({"resize_mode": "stretch"}, "download.resize_mode: 'stretch'"),
    ],
)
def test_a_recipe_with_a_bad_download_value_is_refused_when_loaded(download, field):
    recipe = {"name": "r", "version": 1, "source": "test", "filters": [], "download": download}
    with pytest.raises(RecipeError, match=field.replace(".", r"\.")):
        parse_recipe(recipe)
