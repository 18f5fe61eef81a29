"""The filter stage on the stage contract: resume after a real SIGKILL of `curate filter`, wrong
input tables and an output that is a file refused before any work, in one line with rc 2."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from tests.pairs import pairs_table
from vlcurate.jobs import filter as filter_job
from vlcurate.pipeline.extract.page import pair_uid
from vlcurate.pipeline.recipe import load_recipe

FILES, ROWS = 8, 20_000
RECIPE = {
    "name": "killed",
    "version": 1,
    "source": "test",
    "filters": [{"char_length": {"min": 12}}, "language", "token_repetition"],
    "dedup": {"uid": True, "max_per_url": 2},
}
WORDS = ("red", "blue", "old", "small", "wooden", "bright", "quiet", "tall")
THINGS = ("bicycle", "house", "boat", "dog", "tree", "bridge", "lamp", "chair")


def pairs_files(folder: Path) -> Path:
    """FILES parquet files of ROWS pairs; captions and URLs repeat across files, so both
    deduplications drop rows, and some captions are too short."""
    folder.mkdir(parents=True)
    template = pairs_table("x")
    for n in range(FILES):
        keys = [(n * ROWS + i) * 7919 % 50_000 for i in range(ROWS)]
        captions = [
            f"A {WORDS[k % 8]} {THINGS[k // 8 % 8]} near the river" if k % 13 else "A dog!"
            for k in keys
        ]
        urls = [f"https://example.com/{k % 17_000}.jpg" for k in keys]
        columns = {
            name: [template.column(name)[0].as_py()] * ROWS for name in template.schema.names
        }
        columns.update(
            uid=[pair_uid(c, u) for c, u in zip(captions, urls, strict=True)],
            url=urls,
            caption=captions,
            warc_path=[f"w{n}.warc.gz"] * ROWS,
            warc_offset=list(range(ROWS)),
        )
        pq.write_table(pa.table(columns, schema=template.schema), folder / f"w{n}.parquet")
    return folder


def rows_of(folder: Path) -> list[dict]:
    rows = pq.read_table(folder).to_pylist()
    return sorted(rows, key=lambda r: (r["warc_path"], r["warc_offset"]))


def without_resume(stats: dict) -> dict:
    return {k: v for k, v in stats.items() if k != "units_resumed"}


@pytest.mark.spark
def test_a_killed_filter_resumes_to_the_same_outputs(spark, tmp_path):
    inputs = pairs_files(tmp_path / "pairs")
    recipe_file = tmp_path / "killed.yaml"
    recipe_file.write_text(yaml.safe_dump(RECIPE))
    clean = filter_job.run(
        str(inputs), load_recipe(str(recipe_file)), str(tmp_path / "clean"), write_dropped=True
    )
    assert clean["dropped"]["duplicate_uid"] and clean["dropped"]["duplicate_url"]
    out = tmp_path / "out"
    curate = str(Path(sys.executable).parent / "curate")
    argv = [curate, "filter", "-i", str(inputs), "-r", str(recipe_file), "-o", str(out)]
    argv += ["--dropped", "--master", "local[2]", "--no-progress"]
    child = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    done = out / "_done"
    deadline = time.monotonic() + 300
    while not list(done.glob("*.json")) and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL, "curate filter ended before it could be killed"
    time.sleep(1.5)  # Spark's workers die with the group
    markers = {p: p.stat().st_mtime_ns for p in done.glob("*.json")}
    assert 0 < len(markers) < FILES and not (out / "stats.json").exists()

    again = filter_job.run(
        str(inputs), load_recipe(str(recipe_file)), str(out), write_dropped=True, progress=False
    )
    assert again["units_resumed"] == len(markers)
    assert all(p.stat().st_mtime_ns == t for p, t in markers.items()), "done files were redone"
    assert without_resume(again) == without_resume(clean)
    assert json.loads((out / "stats.json").read_text()) == again
    assert rows_of(out / "pairs") == rows_of(tmp_path / "clean" / "pairs")
    assert rows_of(out / "dropped") == rows_of(tmp_path / "clean" / "dropped")
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]


def one_file(tmp_path: Path, table: pa.Table | None = None, text: str | None = None) -> Path:
    folder = tmp_path / "pairs"
    folder.mkdir()
    pq.write_table(pairs_table("A red bicycle by the wall"), folder / "a.parquet")
    bad = folder / "b.parquet"
    if table is not None:
        pq.write_table(table, bad)
    else:
        bad.write_text(text)
    return bad


def refused(argv: list[str], capsys) -> str:
    assert filter_job.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err  # one line, no traceback
    return err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.drop_columns(["caption"]), "no column 'caption'"),
        (
            lambda t: t.set_column(2, "caption", pa.array([7], pa.int64())),
            "column 'caption' is int64, not string",
        ),
        (
            lambda t: t.set_column(4, "width", pa.array(["wide"])),
            "column 'width' is string, not int32",
        ),
        (None, "not a parquet file"),
    ],
)
def test_wrong_input_tables_are_refused_naming_file_and_column(tmp_path, capsys, change, message):
    table = pairs_table("A red bicycle by the wall")
    if change is None:
        bad = one_file(tmp_path, text="uid,url,caption\n1,http://x/a.jpg,a caption\n")
    else:
        bad = one_file(tmp_path, change(table))
    out = tmp_path / "out"
    err = refused(["-i", str(bad.parent), "-r", "laion", "-o", str(out)], capsys)
    assert str(bad) in err and message in err
    assert not out.exists()  # before any work


def test_an_output_that_is_a_file_is_refused_up_front(tmp_path, capsys):
    folder = tmp_path / "pairs"
    folder.mkdir()
    pq.write_table(pairs_table("A red bicycle by the wall"), folder / "a.parquet")
    (tmp_path / "out").write_text("a file")
    err = refused(["-i", str(folder), "-r", "laion", "-o", str(tmp_path / "out")], capsys)
    assert "is a file" in err
    assert (tmp_path / "out").read_text() == "a file"


def test_a_recipe_with_a_bad_value_is_one_line_and_rc_2(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        yaml.safe_dump({**RECIPE, "filters": [{"char_length": {"min": 50, "max": 10}}]})
    )
    err = refused(["-i", str(tmp_path), "-r", str(recipe), "-o", str(tmp_path / "o")], capsys)
    assert "filters.char_length.min: 50 is not allowed (at most max, 10)" in err


def test_partitions_must_be_positive(tmp_path, capsys):
    err = refused(
        ["-i", str(tmp_path), "-r", "laion", "-o", str(tmp_path / "o"), "--partitions", "0"], capsys
    )
    assert "--partitions: 0 is not allowed" in err


@pytest.mark.spark
def test_a_folder_without_pairs_files_gives_an_empty_output(spark, tmp_path):
    (tmp_path / "pairs").mkdir()
    stats = filter_job.run(
        str(tmp_path), load_recipe("laion"), str(tmp_path / "out"), progress=False
    )
    assert (stats["in"], stats["kept"], stats["units"]["in"]) == (0, 0, 0)
    assert pq.read_table(tmp_path / "out" / "pairs").num_rows == 0
