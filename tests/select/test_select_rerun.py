"""The select stage on the stage contract, on the mini web's scored shards: a rerun with another
threshold or other inputs rebuilds the whole output exactly as a fresh run does, a run killed
with SIGKILL while writing final shards resumes, and the edge cases are ordinary (a shard with
zero samples, zero samples at all, everything dropped, a missing sidecar or scores, an output
that is a file)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tests.pairs import KEEP_ALL
from vlcurate.jobs import selection as select_job
from vlcurate.pipeline.recipe import parse_recipe
from vlcurate.pipeline.select.stage import select

pytestmark = [pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def recipe(**select_section):
    return parse_recipe({**KEEP_ALL, "select": select_section})


def run(inputs: Path, out: Path, r, **kw) -> dict:
    return select(str(inputs / "shards"), str(inputs / "scores"), r, str(out), progress=False, **kw)


def copy_inputs(root: Path, to: Path) -> Path:
    shutil.copytree(root / "shards", to / "shards")
    shutil.copytree(root / "scores", to / "scores")
    return to


def add_empty_shard(inputs: Path, name: str = "00099") -> None:
    """A shard whose every download failed, scored: an empty tar, a sidecar with only failed
    rows, zero score rows and (0, d) embeddings, and the score stage's done marker."""
    shards, scores = inputs / "shards", inputs / "scores"
    with tarfile.open(shards / f"{name}.tar", "w"):
        pass
    meta = pq.read_table(shards / "00000.parquet")
    pq.write_table(meta.filter(pc.not_equal(meta["status"], "success")), shards / f"{name}.parquet")
    shutil.copy(shards / "00000_stats.json", shards / f"{name}_stats.json")
    for folder in ("scores", "metadata"):
        empty = pq.read_table(scores / folder / "00000.parquet").slice(0, 0)
        pq.write_table(empty, scores / folder / f"{name}.parquet")
    for folder in ("img_emb", "text_emb"):
        np.save(scores / folder / f"{name}.npy", np.load(scores / folder / "00000.npy")[:0])
    marker = json.loads((scores / "_done" / "00000.json").read_text())
    marker.update(unit=name, input=str(shards / f"{name}.tar"))
    marker["stats"].update({"in": 0, "kept": 0, "dropped": {}})
    (scores / "_done" / f"{name}.json").write_text(json.dumps(marker))


def contents(out: Path) -> dict:
    """Everything a run leaves, comparable: file names, manifest, stats (without the count of
    resumed units), uids, the selection and every final shard's bytes."""
    stats = json.loads((out / "stats.json").read_text())
    stats.pop("units_resumed")
    return {
        "files": sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()),
        "manifest": json.loads((out / "manifest.json").read_text()),
        "stats": stats,
        "uids": (out / "uids.npy").read_bytes(),
        "selection": pq.read_table(out / "selection.parquet").to_pylist(),
        "shards": {p.name: p.read_bytes() for p in sorted(out.glob("0*"))},
    }


def test_a_rerun_with_another_threshold_equals_a_fresh_run(scored_miniweb, tmp_path):
    root, _ = scored_miniweb
    out = tmp_path / "final"
    more, fewer = (
        recipe(clip_top_fraction=0.9, samples_per_shard=10),
        recipe(clip_top_fraction=0.5, samples_per_shard=10),
    )
    first = run(root, out, more, report=None)
    (out / "00001.tar.tmp-0badc0de").write_bytes(b"left by a killed run")
    again = run(root, out, more, report=None)
    assert again["units_resumed"] == first["shards"] and not list(out.glob("*.tmp-*"))
    second = run(root, out, fewer)  # the README's workflow: change a threshold, rerun select
    assert second["units_resumed"] == 0 and second["kept"] < first["kept"]
    fresh = run(root, tmp_path / "fresh", fewer)
    assert contents(out) == contents(tmp_path / "fresh")
    assert second == fresh
    assert not list(out.rglob("*.tmp-*"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["kept"] == sum(s["samples"] for s in manifest["shards"])
    assert len(np.load(out / "uids.npy")) == manifest["counts"]["kept"]


def test_new_inputs_rebuild_and_a_shard_with_zero_samples_is_ordinary(scored_miniweb, tmp_path):
    root, _ = scored_miniweb
    inputs = copy_inputs(root, tmp_path / "in")
    r = recipe(samples_per_shard=25)
    before = run(inputs, tmp_path / "final", r)
    add_empty_shard(inputs)
    after = run(inputs, tmp_path / "final", r)
    assert after["settings_digest"] != before["settings_digest"]
    assert after["units_resumed"] == 0
    assert (after["in"], after["kept"], after["shards"]) == (
        before["in"],
        before["kept"],
        before["shards"],
    )
    assert "keep-all" in (tmp_path / "final" / "report.html").read_text()
    assert run(inputs, tmp_path / "fresh", r) == after
    assert contents(tmp_path / "final") == contents(tmp_path / "fresh")


def test_zero_samples_give_valid_empty_outputs(scored_miniweb, tmp_path):
    root, _ = scored_miniweb
    inputs = tmp_path / "in"
    (inputs / "shards").mkdir(parents=True)
    for folder in ("scores", "metadata", "img_emb", "text_emb", "_done"):
        (inputs / "scores" / folder).mkdir(parents=True)
    for path in (root / "shards").glob("00000*"):
        shutil.copy(path, inputs / "shards")
    for path in (root / "scores").glob("*/00000*"):
        shutil.copy(path, inputs / "scores" / path.parent.name)
    add_empty_shard(inputs)
    for path in list((inputs / "shards").glob("00000*")) + list(inputs.glob("scores/*/00000*")):
        path.unlink()
    stats = run(inputs, tmp_path / "final", recipe(clip_min=0.2))
    assert (stats["in"], stats["kept"], stats["dropped"], stats["shards"]) == (0, 0, {}, 0)
    _check_empty(tmp_path / "final", 0)


def test_everything_dropped_gives_valid_empty_outputs_and_removes_old_shards(
    scored_miniweb, tmp_path
):
    root, _ = scored_miniweb
    out = tmp_path / "final"
    run(root, out, recipe(samples_per_shard=20), report=None)
    assert list(out.glob("*.tar"))
    stats = run(root, out, recipe(clip_min=1))
    assert stats["kept"] == 0 and stats["dropped"] == {"clip_similarity": stats["in"]} != {}
    _check_empty(out, stats["in"])
    assert contents(out) == contents(_fresh(root, tmp_path / "fresh", recipe(clip_min=1)))


def _fresh(root, out, r) -> Path:
    run(root, out, r)
    return out


def _check_empty(out: Path, n_in: int) -> None:
    assert not list(out.glob("*.tar")) and not list(out.glob("_done/*"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["shards"] == [] and manifest["counts"]["kept"] == 0
    uids = np.load(out / "uids.npy")
    assert uids.dtype == np.dtype("u8,u8") and len(uids) == 0
    assert pq.read_table(out / "selection.parquet").num_rows == n_in
    assert "0 of" in (out / "report.html").read_text()


KILLED_RUN = """
import sys
from vlcurate.pipeline.recipe import parse_recipe
from vlcurate.pipeline.select.stage import select
root, out = sys.argv[1], sys.argv[2]
recipe = parse_recipe({"name": "keep-all", "version": 1, "source": "test", "filters": [],
                       "select": {"samples_per_shard": 1, "dedup": {"exact": False}}})
select(f"{root}/shards", f"{root}/scores", recipe, out, progress=False, report=None)
"""


def test_a_run_killed_with_sigkill_while_writing_shards_resumes(scored_miniweb, tmp_path):
    root, _ = scored_miniweb
    out = tmp_path / "final"
    argv = [sys.executable, "-c", KILLED_RUN, str(root), str(out)]
    child = subprocess.Popen(argv, cwd=REPO, start_new_session=True)
    deadline = time.monotonic() + 300
    while len(list(out.glob("_done/*.json"))) < 3 and time.monotonic() < deadline:
        assert child.poll() is None, "the run ended before it could be killed"
        time.sleep(0.005)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    finished = len(list(out.glob("_done/*.json")))
    assert not (out / "manifest.json").exists() and not (out / "stats.json").exists()
    r = recipe(samples_per_shard=1, dedup={"exact": False})
    stats = run(root, out, r, report=None)
    assert 3 <= finished < stats["shards"]
    assert stats["units_resumed"] == finished
    assert not list(out.rglob("*.tmp-*"))
    assert contents(out) == contents(_fresh_without_report(root, tmp_path / "fresh", r))


def _fresh_without_report(root, out, r) -> Path:
    run(root, out, r, report=None)
    return out


def _main(inputs: Path, out: Path, *more: str) -> int:
    keep_all = out.parent / "keep-all.yaml"
    keep_all.write_text(json.dumps(KEEP_ALL))  # JSON is YAML
    argv = ["--shards", str(inputs / "shards"), "--scores", str(inputs / "scores")]
    return select_job.main([*argv, "--recipe", str(keep_all), "--output", str(out), *more])


@pytest.mark.parametrize(
    "missing, message",
    [
        ("shards/00001.parquet", "shard 00001: its parquet sidecar"),
        ("scores/scores/00001.parquet", "shard 00001: its scores"),
        ("scores/img_emb/00001.npy", "shard 00001: its image embeddings"),
    ],
)
def test_a_shard_without_its_sidecar_or_scores_is_one_line_and_exit_2(
    scored_miniweb, tmp_path, capsys, missing, message
):
    root, _ = scored_miniweb
    inputs = copy_inputs(root, tmp_path / "in")
    (inputs / missing).unlink()
    assert _main(inputs, tmp_path / "final", "--no-progress") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "final").exists()


def test_an_output_that_is_a_file_or_an_input_is_refused(scored_miniweb, tmp_path, capsys):
    root, _ = scored_miniweb
    (tmp_path / "final").write_text("not a folder")
    assert _main(root, tmp_path / "final") == 2
    err = capsys.readouterr().err
    assert "is a file" in err and err.count("\n") == 1, err
    assert (tmp_path / "final").read_text() == "not a folder"
    inputs = copy_inputs(root, tmp_path / "in")
    before = sorted(p.name for p in (inputs / "shards").iterdir())
    assert _main(inputs, inputs / "shards") == 2
    assert "is an input folder" in capsys.readouterr().err
    assert sorted(p.name for p in (inputs / "shards").iterdir()) == before
