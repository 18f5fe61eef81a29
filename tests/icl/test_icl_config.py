"""``curate eval icl`` refuses settings out of range before any work: one line ``error: ...``
naming the field, the value and what is allowed, and exit code 2; the configs check
themselves in code too."""

import pytest

from vlcurate.jobs import cli
from vlcurate.pipeline.config import ConfigError
from vlcurate.pipeline.icl.episodes import NONSENSE, EpisodeConfig
from vlcurate.pipeline.icl.frozen import FrozenConfig
from vlcurate.pipeline.icl.run import GridConfig, ModelsConfig

MODELS = "frozen, blind, clip-prototype, chance, oracle"


@pytest.mark.parametrize(
    "flags, refused, allowed",
    [
        (["--ways", "1"], "icl.ways: 1", "integers >= 2)"),
        (["--ways", "2", "13"], "icl.ways: 13", "(at most 12 ways with nonsense names)"),
        (["--shots", "0"], "icl.shots: 0", "integers >= 1)"),
        (["--repeats", "6"], "icl.repeats: 6", "integers >= 0 and <= 5)"),
        (["--episodes-per-set", "0"], "icl.episodes_per_set: 0", "(an integer >= 1)"),
        (["--induction", "sometimes"], "icl.induction: 'sometimes'", "(one of both, on, off)"),
        (["--names", "fancy"], "icl.names: 'fancy'", "(one of nonsense, real)"),
        (["--models", "chance", "gpt"], "icl.models: 'gpt'", f"(one of {MODELS})"),
        (["--batch-size", "0"], "icl.batch_size: 0", "(an integer >= 1)"),
        (["--seed", "-1"], "icl.seed: -1", "(an integer >= 0)"),
    ],
)
def test_eval_icl_refuses_bad_settings(flags, refused, allowed, tmp_path, capsys):
    out = tmp_path / "icl"
    argv = ["eval", "icl", "--folder", str(tmp_path / "missing"), "--output", str(out), *flags]
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    assert stop.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith(f"error: {refused} is not allowed (")
    assert captured.err.endswith(f"{allowed}\n"), captured.err
    assert not out.exists()  # refused before any work


def test_real_names_allow_more_ways_than_there_are_nonsense_words():
    assert GridConfig(ways=[20], names="real").ways == [20]
    with pytest.raises(ConfigError, match="nonsense names"):
        GridConfig(ways=[len(NONSENSE) + 1])


def test_configs_check_themselves_in_code():
    with pytest.raises(ConfigError, match=r"episodes\.inner_shots: 0 "):
        EpisodeConfig(inner_shots=0)
    with pytest.raises(ConfigError, match=r"episodes\.ways: 13 .*nonsense"):
        EpisodeConfig(ways=13)
    with pytest.raises(ConfigError, match=r"episodes\.episodes: -1 "):
        EpisodeConfig(episodes=-1)
    assert EpisodeConfig(ways=13, names="real").ways == 13
    with pytest.raises(ConfigError, match=r"frozen\.prefix_tokens: 0 "):
        FrozenConfig(prefix_tokens=0)
    with pytest.raises(ConfigError, match="one of frozen"):
        ModelsConfig(models=["frozen", "llava"])
    with pytest.raises(ConfigError, match=r"icl\.models: 3 is not allowed \(a list of text\)"):
        ModelsConfig(models=3)


def test_help_shows_ranges_and_choices(capsys):
    with pytest.raises(SystemExit):
        cli.main(["eval", "icl", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: [2, 5]; >= 2)" in text
    assert "(default: [0]; >= 0 and <= 5)" in text
    assert "(default: both; one of both, on, off)" in text
    assert f"one of {MODELS}" in text
    assert "--fast-vqa ATTRIBUTE" in text and "--frozen FINAL.pt" in text
    assert "--no-baselines" in text and "--no-progress" in text and "--predictions" in text
