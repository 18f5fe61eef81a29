"""The stage contract and its runner, on a small stage of their own: word counts of text files.
Resume after a real SIGKILL, settings refused or rebuilt, refused units, temporaries, outputs
that are files, and local worker processes that die."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from vlcurate.pipeline import storage
from vlcurate.pipeline.executors import LocalExecutor, WorkerDied
from vlcurate.pipeline.stage import OutputError, SettingsMismatch, Stage, Unit, run_stage
from vlcurate.pipeline.stats import StageStats


@dataclass
class WordCounts(Stage):
    """Each text file -> ``counts/NAME.json`` with its words counted; lines with fewer than
    ``min_words`` words are dropped as ``short_line``. A file that is not UTF-8 is refused."""

    inputs: list[str]
    output: str
    min_words: int = 1
    sleep: float = 0.0  # seconds per unit, for kill tests

    name = "words"
    folders = ("counts",)

    def settings(self) -> dict:
        return {"min_words": self.min_words}

    def units(self) -> list[Unit]:
        return [Unit(Path(p).stem, p) for p in self.inputs]

    def process(self, unit: Unit, device: str = "cpu") -> StageStats | str:
        time.sleep(self.sleep)
        try:
            text = Path(unit.input).read_text("utf-8")
        except UnicodeDecodeError:
            return "not_utf8"  # refused: counted by name, no marker
        if text == "die\n":
            os.kill(os.getpid(), signal.SIGKILL)  # an OOM kill, say
        stats = StageStats(self.name)
        words = 0
        for line in text.splitlines():
            if len(line.split()) < self.min_words:
                stats.main.drop("short_line")
            else:
                stats.main.keep()
                words += len(line.split())
        stats.extra["words"] += words
        out = storage.join(self.output, "counts", f"{unit.name}.json")
        storage.write_text_atomic(out, json.dumps({"words": words}))
        return stats

    def finish(self, stats: StageStats) -> dict:
        return {"min_words": self.min_words}


def texts(folder: Path, n: int = 4) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"t{i}.txt"
        path.write_text("one two three\nfour\n" * (i + 1))
        paths.append(str(path))
    return paths


def test_every_unit_is_done_once_and_stats_add_up(tmp_path):
    stage = WordCounts(texts(tmp_path / "in"), str(tmp_path / "out"), min_words=2)
    stats = run_stage(stage, LocalExecutor(progress=False))
    assert (stats["in"], stats["kept"], stats["dropped"]) == (20, 10, {"short_line": 10})
    assert stats["words"] == 30 and stats["units"]["kept"] == 4 and stats["units_resumed"] == 0
    assert json.loads((tmp_path / "out" / "stats.json").read_text()) == stats
    assert sorted(p.name for p in (tmp_path / "out" / "_done").iterdir()) == [
        f"t{i}.json" for i in range(4)
    ]
    again = run_stage(stage, LocalExecutor(progress=False))
    assert again["units_resumed"] == 4 and again["in"] == 20


def test_other_settings_are_refused_before_anything_is_written(tmp_path):
    inputs = texts(tmp_path / "in")
    run_stage(WordCounts(inputs, str(tmp_path / "out")), LocalExecutor(progress=False))
    (tmp_path / "out" / "counts" / "x.json.tmp-00000000").write_text("{")
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("*")}
    with pytest.raises(SettingsMismatch, match="min_words: 1 -> 3"):
        run_stage(WordCounts(inputs, str(tmp_path / "out"), min_words=3))
    assert {p: p.stat().st_mtime_ns for p in before} == before  # nothing touched
    assert (tmp_path / "out" / "counts" / "x.json.tmp-00000000").exists()


def test_a_stage_cheap_to_redo_rebuilds_its_whole_output(tmp_path):
    @dataclass
    class Rebuilt(WordCounts):
        rebuild_on_change = True

    inputs = texts(tmp_path / "in")
    run_stage(Rebuilt(inputs, str(tmp_path / "out")), LocalExecutor(progress=False))
    stats = run_stage(Rebuilt(inputs, str(tmp_path / "out"), min_words=2))
    assert stats["units_resumed"] == 0 and stats["kept"] == 10
    digests = {
        json.loads(p.read_text())["settings_digest"] for p in (tmp_path / "out/_done").iterdir()
    }
    assert digests == {stats["settings_digest"]}


def test_a_refused_unit_is_counted_by_name_and_gets_no_marker(tmp_path):
    inputs = texts(tmp_path / "in", 2)
    bad = tmp_path / "in" / "latin1.txt"
    bad.write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    stats = run_stage(WordCounts([*inputs, str(bad)], str(tmp_path / "out")))
    assert stats["units"] == {"in": 3, "kept": 2, "dropped": {"not_utf8": 1}}
    assert stats["refused_units"] == {"latin1": 1}
    assert not (tmp_path / "out" / "_done" / "latin1.json").exists()
    assert stats["in"] == 6  # the refused file's lines are not in the main tally


def test_an_output_that_is_a_file_is_refused_up_front(tmp_path):
    (tmp_path / "out").write_text("not a folder")
    with pytest.raises(OutputError, match="is a file"):
        run_stage(WordCounts(texts(tmp_path / "in"), str(tmp_path / "out")))


KILLED_RUN = textwrap.dedent(
    """
    import sys
    from tests.test_stage import WordCounts
    from vlcurate.pipeline.executors import LocalExecutor
    from vlcurate.pipeline.stage import run_stage
    inputs, out, devices = sys.argv[1].split(","), sys.argv[2], int(sys.argv[3])
    run_stage(WordCounts(inputs, out, sleep=0.5), LocalExecutor(["cpu"] * devices, False))
    """
)


@pytest.mark.parametrize("processes", [1, 2])
def test_a_run_killed_with_sigkill_resumes(tmp_path, processes):
    inputs = texts(tmp_path / "in", 8)
    out = tmp_path / "out"
    run = [sys.executable, "-c", KILLED_RUN, ",".join(inputs), str(out), str(processes)]
    child = subprocess.Popen(run, cwd=Path(__file__).parent.parent, start_new_session=True)
    done = out / "_done"
    deadline = time.monotonic() + 60
    while len(list(done.glob("*.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    time.sleep(1.5)  # workers (with processes=2) die with their parent
    finished = len(list(done.glob("*.json")))
    assert 2 <= finished < 8
    assert len(list(done.glob("*.json"))) == finished, "a worker outlived its parent"
    stats = run_stage(WordCounts(inputs, str(out)), LocalExecutor(progress=False))
    assert stats["units_resumed"] == finished and stats["units"]["kept"] == 8
    assert stats["in"] == sum(2 * (i + 1) for i in range(8))
    assert not list(out.rglob("*.tmp-*"))


def test_a_worker_that_dies_fails_the_run_within_seconds(tmp_path):
    inputs = texts(tmp_path / "in", 4)
    Path(inputs[1]).write_text("die\n")
    started = time.monotonic()
    with pytest.raises(WorkerDied, match="died"):
        run_stage(WordCounts(inputs, str(tmp_path / "out")), LocalExecutor(["cpu"] * 2, False))
    assert time.monotonic() - started < 30  # not a hang
