"""The download stage on the stage contract, against a real HTTP server on 127.0.0.1: one unit
per img2dataset shard, the runner's done markers beside img2dataset's ``_stats.json``, resume,
settings refused when they change, and the edge cases (nothing to download, a wrong input table,
an output that is a file)."""

import json
import os
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.download.web import candidates
from tests.pairs import pairs_table
from vlcurate.jobs.download import main
from vlcurate.pipeline.download.candidates import CandidatesError
from vlcurate.pipeline.download.politeness import HostGate
from vlcurate.pipeline.download.safety import SafetyConfig
from vlcurate.pipeline.download.shards import shard_stats
from vlcurate.pipeline.download.stage import DownloadConfig, DownloadStage, download_stage
from vlcurate.pipeline.stage import OutputError, SettingsMismatch

LOOPBACK = SafetyConfig(allow_networks=["127.0.0.0/8"])
SMALL = DownloadConfig(image_size=64, processes=1, threads=4, samples_per_shard=4, timeout=3)
SHARDS = ["00000", "00001", "00002"]  # 9 safe URLs, 4 per shard


def files_of(folder) -> dict[str, int]:
    """Every file under ``folder`` and its modification time."""
    return {
        str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()
    }


@pytest.fixture(scope="module")
def downloaded(image_server, tmp_path_factory):
    """One finished run: ``(output folder, its stats)``."""
    base, colours = image_server
    out = tmp_path_factory.mktemp("download") / "shards"
    return out, download_stage(candidates(base, colours), str(out), SMALL, LOOPBACK)


def copy_of(downloaded, tmp_path):
    out, stats = downloaded
    shutil.copytree(out, tmp_path / "shards")
    return tmp_path / "shards", stats


def test_each_shard_is_a_unit_with_a_done_marker_beside_its_own(downloaded):
    out, stats = downloaded
    assert stats["units"] == {"in": 3, "kept": 3, "dropped": {}}
    assert stats["units_resumed"] == 0 and stats["settings_digest"]
    rows = ["[0:4]", "[4:8]", "[8:9]"]
    for name, row_range in zip(SHARDS, rows, strict=True):
        marker = json.loads((out / "_done" / f"{name}.json").read_text())
        assert marker["stage"] == "download" and marker["unit"] == name
        assert marker["input"].endswith(f"_input/urls.parquet{row_range}")
        sidecar = shard_stats(str(out), name).to_dict()  # the sidecar agrees with the marker
        assert {k: marker["stats"][k] for k in sidecar} == sidecar
        assert marker["settings_digest"] == stats["settings_digest"]
        assert (
            json.loads((out / f"{name}_stats.json").read_text())["count"] == marker["stats"]["in"]
        )
    assert sorted(p.stem for p in (out / "_done").iterdir()) == SHARDS


def test_a_rerun_resumes_every_shard_without_fetching(image_server, downloaded, tmp_path):
    base, colours = image_server
    out, first = copy_of(downloaded, tmp_path)
    before = {k: v for k, v in files_of(out).items() if not k.startswith(("_input", "stats"))}
    # How fast and how patiently it fetches is not a setting of the output: other threads,
    # processes and timeout resume the same shards.
    faster = DownloadConfig(**{**SMALL.__dict__, "threads": 8, "processes": 2, "timeout": 5})
    second = download_stage(candidates(base, colours), str(out), faster, LOOPBACK)
    assert second["units_resumed"] == 3
    assert {k: v for k, v in second.items() if k not in ("units_resumed", "config")} == {
        k: v for k, v in first.items() if k not in ("units_resumed", "config")
    }
    after = files_of(out)
    assert all(after[name] == mtime for name, mtime in before.items())
    assert not (out / "_tmp").exists()


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"image_size": 32}, "image_size: 64 -> 32"),
        ({"encode_quality": 80}, "encode_quality: 95 -> 80"),
        ({"samples_per_shard": 5}, "samples_per_shard: 4 -> 5"),
    ],
)
def test_other_settings_are_refused_before_anything_is_touched(
    image_server, downloaded, tmp_path, change, named
):
    base, colours = image_server
    out, _ = copy_of(downloaded, tmp_path)
    before = files_of(out)
    config = DownloadConfig(**{**SMALL.__dict__, **change})
    with pytest.raises(SettingsMismatch, match=named):
        download_stage(candidates(base, colours), str(out), config, LOOPBACK)
    assert files_of(out) == before


def test_other_candidates_are_refused_not_mixed_into_the_shards(image_server, downloaded, tmp_path):
    base, colours = image_server
    out, _ = copy_of(downloaded, tmp_path)
    before = files_of(out)
    fewer = candidates(base, colours).slice(1)  # every URL moves up a row: other shards
    with pytest.raises(SettingsMismatch, match="input_urls_digest"):
        download_stage(fewer, str(out), SMALL, LOOPBACK)
    assert files_of(out) == before


def test_shards_from_before_the_markers_are_marked_without_fetching(
    image_server, downloaded, tmp_path
):
    """An output img2dataset finished before the runner kept markers (only ``_stats.json``)."""
    base, colours = image_server
    out, first = copy_of(downloaded, tmp_path)
    shutil.rmtree(out / "_done")
    tars = {name: (out / f"{name}.tar").stat().st_mtime_ns for name in SHARDS}
    again = download_stage(candidates(base, colours), str(out), SMALL, LOOPBACK)
    assert (again["in"], again["kept"], again["dropped"]) == (
        first["in"],
        first["kept"],
        first["dropped"],
    )
    assert (
        again["units_resumed"] == 0 and sorted(p.stem for p in (out / "_done").iterdir()) == SHARDS
    )
    assert {name: (out / f"{name}.tar").stat().st_mtime_ns for name in SHARDS} == tars


def test_a_stats_file_cut_short_is_written_again(image_server, downloaded, tmp_path):
    """img2dataset writes ``_stats.json`` in place; a kill while it writes leaves half of it,
    which its incremental mode would take for a finished shard."""
    base, colours = image_server
    out, first = copy_of(downloaded, tmp_path)
    stats_file = out / "00002_stats.json"
    stats_file.write_text(stats_file.read_text()[:30])
    (out / "_done" / "00002.json").unlink()
    again = download_stage(candidates(base, colours), str(out), SMALL, LOOPBACK)
    assert (again["kept"], again["dropped"]) == (first["kept"], first["dropped"])
    assert json.loads(stats_file.read_text())["count"] == 1
    assert again["units_resumed"] == 2


def test_zero_candidates_give_an_empty_valid_output(tmp_path):
    """A recipe that drops everything: nothing to download, and stats that say so."""
    out = tmp_path / "shards"
    stats = download_stage(pairs_table("x").slice(0, 0), str(out), SMALL, LOOPBACK)
    assert (stats["in"], stats["kept"], stats["dropped"], stats["shards"]) == (0, 0, {}, 0)
    assert stats["units"] == {"in": 0, "kept": 0, "dropped": {}}
    assert json.loads((out / "stats.json").read_text()) == stats
    assert pq.read_table(out / "_input" / "urls.parquet").num_rows == 0
    assert not list(out.glob("*.tar"))


def test_the_command_on_an_empty_candidates_folder(tmp_path, capsys):
    """Spark writes no row and maybe no file at all for an empty result: still a valid run."""
    folder = tmp_path / "candidates" / "pairs"
    folder.mkdir(parents=True)
    (folder / "_SUCCESS").write_text("")
    out = tmp_path / "shards"
    assert main(["--input", str(tmp_path / "candidates"), "--output", str(out)]) == 0
    assert "download: 0 candidates -> 0 images in 0 shards" in capsys.readouterr().out
    assert json.loads((out / "stats.json").read_text())["in"] == 0


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (pa.table({"caption": ["a cat"]}), "download: the candidates have no 'url' column"),
        (
            pa.table({"url": ["https://a.example/x.jpg"], "caption": [3]}),
            "download: the 'caption' column holds int64, not string",
        ),
    ],
)
def test_a_wrong_input_table_is_refused_naming_the_column(table, message, tmp_path, capsys):
    with pytest.raises(CandidatesError, match=message):
        download_stage(table, str(tmp_path / "a"), SMALL, LOOPBACK)
    pq.write_table(table, tmp_path / "candidates.parquet")
    out = tmp_path / "b"
    assert main(["--input", str(tmp_path / "candidates.parquet"), "--output", str(out)]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    assert not (tmp_path / "a").exists() and not out.exists()


def test_an_output_that_is_a_file_is_refused_up_front(tmp_path, capsys):
    target = tmp_path / "shards"
    target.write_text("not a folder")
    with pytest.raises(OutputError, match="is a file"):
        download_stage(pairs_table("a cat"), str(target), SMALL, LOOPBACK)
    pq.write_table(pairs_table("a cat"), tmp_path / "candidates.parquet")
    argv = ["--input", str(tmp_path / "candidates.parquet"), "--output", str(target)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: download: the output ") and err.count("\n") == 1
    assert target.read_text() == "not a folder"


def test_a_missing_input_is_refused_in_one_line(tmp_path, capsys):
    out = tmp_path / "shards"
    assert main(["--input", str(tmp_path / "nowhere"), "--output", str(out)]) == 2
    assert capsys.readouterr().err == f"error: input not found: {tmp_path / 'nowhere'}\n"
    assert not out.exists()


def test_a_resume_at_another_host_concurrency_is_not_stopped_by_a_killed_runs_table(
    image_server, downloaded, tmp_path
):
    """A killed run leaves its politeness table in /dev/shm; a resume at another
    ``--host-concurrency`` downloads the missing shard with a table of its own, and its end
    removes both."""
    base, colours = image_server
    out, first = copy_of(downloaded, tmp_path)
    for leftover in [out / "_done" / "00001.json", out / "00001.tar", out / "00001_stats.json"]:
        leftover.unlink()
    killed = DownloadStage(candidates(base, colours), str(out), SMALL, LOOPBACK)
    left = HostGate(killed.run_key(), SMALL.host_concurrency, lease_seconds=1)
    left.close()
    wider = DownloadConfig(**{**SMALL.__dict__, "host_concurrency": SMALL.host_concurrency + 6})
    second = download_stage(candidates(base, colours), str(out), wider, LOOPBACK)
    assert second["units_resumed"] == 2 and second["kept"] == first["kept"]
    assert not os.path.exists(left.path)
