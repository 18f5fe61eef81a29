"""`curate docs filter` on the stage contract (real Spark, real files): a SIGKILL mid-run resumed
to the same outputs, other settings refused before anything is touched, and bad values in a
recipe's ``docs:`` section refused before any work."""

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

from tests.docs.test_docs_job import doc
from vlcurate.jobs import cli
from vlcurate.schemas.extract import DOC_SCHEMA

FILES, DOCS_PER_FILE = 8, 2500
ROOT = Path(__file__).parent.parent.parent


def docs_input(folder: Path) -> Path:
    (folder / "docs").mkdir(parents=True)
    for part in range(FILES):
        # every other document shows one of 25 banners, 400 times each in the corpus
        urls = [f"{i % 50}.jpg" if i % 2 == 0 else f"{part}-{i}.jpg" for i in range(DOCS_PER_FILE)]
        rows = [
            doc(f"p{part}-{i}", [f"http://cdn.example.com/{url}"]) for i, url in enumerate(urls)
        ]
        table = pa.Table.from_pylist(rows, schema=DOC_SCHEMA)
        pq.write_table(table, folder / "docs" / f"part-{part}.parquet")
    return folder


def write_recipe(path: Path, docs: dict) -> Path:
    path.write_text(
        json.dumps({"name": "t", "version": 1, "source": "t", "filters": [], "docs": docs})
    )
    return path


def filter_argv(inputs: Path, recipe: Path, out: Path, *extra: str) -> list[str]:
    return [
        "docs",
        "filter",
        "-i",
        str(inputs),
        "-r",
        str(recipe),
        "-o",
        str(out),
        "--no-progress",
        *extra,
    ]


def outputs(out: Path) -> dict[str, pa.Table]:
    return {p.name: pq.read_table(p) for p in sorted((out / "docs").glob("*.parquet"))}


@pytest.mark.spark
def test_a_run_killed_with_sigkill_resumes_to_the_same_outputs(spark, tmp_path):
    inputs = docs_input(tmp_path / "in")
    recipe = write_recipe(tmp_path / "r.yaml", {"max_url_count": 300})
    reference = tmp_path / "reference"
    assert cli.main(filter_argv(inputs, recipe, reference)) == 0
    out = tmp_path / "out"
    run = [
        sys.executable,
        "-m",
        "vlcurate.jobs.cli",
        *filter_argv(inputs, recipe, out, "--master", "local[1]"),
    ]
    child = subprocess.Popen(run, cwd=ROOT, start_new_session=True)
    done, deadline = out / "_done", time.monotonic() + 300
    while len(list(done.glob("*.json"))) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(child.pid, signal.SIGKILL)  # the driver, its JVM and the Python workers
    child.wait()
    finished = len(list(done.glob("*.json")))
    assert 1 <= finished < FILES
    assert cli.main(filter_argv(inputs, recipe, out)) == 0
    stats = json.loads((out / "stats.json").read_text())
    expected = json.loads((reference / "stats.json").read_text())
    assert stats.pop("units_resumed") == finished and expected.pop("units_resumed") == 0
    assert stats == expected and stats["frequent_image_urls"] == 25
    assert stats["units"] == {"in": FILES, "kept": FILES, "dropped": {}}
    now, then = outputs(out), outputs(reference)
    assert now.keys() == then.keys() and all(now[k].equals(then[k]) for k in then)
    assert not list(out.rglob("*.tmp-*"))


@pytest.mark.spark
def test_other_settings_are_refused_before_anything_is_touched(spark, tmp_path, capsys):
    inputs = docs_input(tmp_path / "in")
    out = tmp_path / "out"
    assert cli.main(filter_argv(inputs, write_recipe(tmp_path / "a.yaml", {}), out)) == 0
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    other = write_recipe(tmp_path / "b.yaml", {"min_images": 2})
    capsys.readouterr()
    assert cli.main(filter_argv(inputs, other, out)) == 2
    err = capsys.readouterr().err
    assert "other settings" in err and "min_images: 1 -> 2" in err and err.count("\n") == 1
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


@pytest.mark.parametrize(
    "docs, message",
    [
        (
            {"min_node_words": 50, "max_node_words": 10},
            "docs.min_node_words: 50 is not allowed (at most max_node_words, 10)",
        ),
        ({"min_doc_words": -1}, "docs.min_doc_words: -1 is not allowed"),
        ({"max_node_special_chars": 1.5}, "docs.max_node_special_chars: 1.5 is not allowed"),
        ({"min_lang_score": -0.1}, "docs.min_lang_score: -0.1 is not allowed"),
        ({"languages": "en"}, "docs.languages: 'en' is not allowed (a list of text)"),
        (
            {"min_images": 5, "max_images": 2},
            "docs.min_images: 5 is not allowed (at most max_images, 2)",
        ),
        ({"max_url_count": "many"}, "docs.max_url_count: 'many' is not allowed (an integer)"),
        ({"node_word_ngram": 0}, "docs.node_word_ngram: 0 is not allowed"),
    ],
)
def test_bad_values_are_refused_before_any_work(tmp_path, capsys, docs, message):
    out = tmp_path / "out"
    argv = filter_argv(tmp_path / "nowhere", write_recipe(tmp_path / "r.yaml", docs), out)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("error: ") and err.count("\n") == 1
    assert not out.exists()
