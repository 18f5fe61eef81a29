"""Settings out of range are refused before any work: ``curate train``, ``curate eval`` and
``curate compare`` print one line ``error: ...`` naming the field, the value and what is
allowed, and exit with code 2; ``--help`` shows each flag's range."""

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from vlcurate.jobs import cli
from vlcurate.jobs.options import add_config_flags, config_from_layers
from vlcurate.pipeline.config import ConfigError
from vlcurate.pipeline.train.clip import TrainConfig
from vlcurate.pipeline.train.compare import CompareConfig
from vlcurate.pipeline.train.frozen import FrozenTrainConfig

CURATE = Path(sys.executable).with_name("curate")


def refused(capsys, argv: list[str]) -> str:
    """``curate ARGV`` exits with code 2 and one line on stderr; returns that line."""
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    assert stop.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    line = captured.err.strip()
    assert "\n" not in line and line.startswith("error: "), captured.err
    return line


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--batch-size", "0"], "train.batch_size: 0 is not allowed (an integer >= 1)"),
        (["--epochs", "-1"], "train.epochs: -1 is not allowed (an integer >= 1)"),
        (["--lr", "0"], "train.lr: 0.0 is not allowed (a number > 0)"),
        (["--weight-decay", "-0.1"], "train.weight_decay: -0.1 is not allowed (a number >= 0)"),
        (["--accum-steps", "0"], "train.accum_steps: 0 is not allowed (an integer >= 1)"),
        (["--workers", "-2"], "train.workers: -2 is not allowed (an integer >= 0)"),
        (["--max-steps", "0"], "train.max_steps: 0 is not allowed (an integer >= 1, or null)"),
        (["--precision", "fp8"], "train.precision: 'fp8' is not allowed (one of fp32, bf16, fp16)"),
    ],
)
def test_train_clip_refuses_bad_settings(flags, message, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "clip", "--shards", "x.tar", "--output", str(out), *flags]
    assert refused(capsys, argv) == f"error: {message}"
    assert not out.exists()  # nothing written: refused before any work


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--steps", "0"], "frozen.steps: 0 is not allowed (an integer >= 1)"),
        (["--prefix-tokens", "0"], "frozen.prefix_tokens: 0 is not allowed (an integer >= 1)"),
        (["--lr=-3e-4"], "frozen.lr: -0.0003 is not allowed (a number > 0)"),
        (["--max-tokens", "1"], "frozen.max_tokens: 1 is not allowed (an integer >= 2)"),
        (["--shuffle-buffer", "-1"], "frozen.shuffle_buffer: -1 is not allowed (an integer >= 0)"),
    ],
)
def test_train_frozen_refuses_bad_settings(flags, message, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "frozen", "--shards", "x.tar", "--output", str(out), *flags]
    assert refused(capsys, argv) == f"error: {message}"
    assert not out.exists()


@pytest.mark.parametrize("task", ["retrieval", "zeroshot"])
def test_eval_refuses_a_bad_batch_size_before_loading_the_model(task, tmp_path, capsys):
    source = ["--shards", "x.tar"] + (["--label-field", "kind"] if task == "zeroshot" else [])
    argv = ["eval", task, *source, "--model", "no-such-model", "--pretrained", "none"]
    out = tmp_path / "r.json"
    line = refused(capsys, [*argv, "--batch-size", "0", "--output", str(out)])
    assert line == "error: eval.batch_size: 0 is not allowed (an integer >= 1)"
    assert not out.exists()


def test_compare_refuses_bad_settings(tmp_path, capsys):
    base = ["compare", "demo", "laion", "--shards", "s", "--scores", "c", "--output", str(tmp_path)]
    line = refused(capsys, [*base, "--samples", "0"])
    assert line == "error: compare.samples: 0 is not allowed (an integer >= 1)"
    line = refused(capsys, [*base, "--samples", "50", "--batch-size", "64"])
    assert line == "error: compare.batch_size: 64 is not allowed (at most samples, 50)"
    assert (
        refused(capsys, [*base, "--lr", "0"])
        == "error: compare.lr: 0.0 is not allowed (a number > 0)"
    )
    assert list(tmp_path.iterdir()) == []


def test_the_curate_command_exits_2_with_one_line(tmp_path):
    """The installed ``curate`` console script, as a user runs it."""
    done = subprocess.run(
        [str(CURATE), "train", "clip", "--shards", "x.tar", "--output", str(tmp_path / "r")]
        + ["--samples-per-epoch", "0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert done.stderr == ("error: train.samples_per_epoch: 0 is not allowed (an integer >= 1)\n")
    assert not (tmp_path / "r").exists()


def test_configs_check_themselves_in_code():
    for bad in (dict(lr=0.0), dict(batch_size=0), dict(precision="fp64"), dict(seed=-1)):
        with pytest.raises(ConfigError):
            TrainConfig(**bad)
    with pytest.raises(ConfigError, match=r"frozen\.batch_size: 0 "):
        FrozenTrainConfig(batch_size=0)
    with pytest.raises(ConfigError, match="at most samples"):
        CompareConfig(samples=10, batch_size=64)
    assert TrainConfig(max_steps=None).max_steps is None  # null stays allowed where it is


def test_help_shows_each_flags_range(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "clip", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "pairs per micro-batch (contrastive) (default: 256; >= 1)" in text
    assert "peak learning rate (default: 0.0005; > 0)" in text
    assert "(default: fp32; one of fp32, bf16, fp16)" in text
    with pytest.raises(SystemExit):
        cli.main(["compare", "--help"])
    assert "(default: 64; >= 1 and <= samples)" in " ".join(capsys.readouterr().out.split())


def test_layered_settings_are_refused_the_same_way(capsys):
    parser = argparse.ArgumentParser()
    add_config_flags(parser, TrainConfig, layered=True)
    args = parser.parse_args(["--epochs", "2"])
    assert config_from_layers(TrainConfig, {"lr": 0.1}, args=args).epochs == 2
    with pytest.raises(SystemExit) as stop:
        config_from_layers(TrainConfig, {"lr": -0.1}, args=args)
    assert stop.value.code == 2
    assert capsys.readouterr().err == "error: train.lr: -0.1 is not allowed (a number > 0)\n"
