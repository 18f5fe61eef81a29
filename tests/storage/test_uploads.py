"""Uploads finished in the background (pipeline/uploads.py): a unit's marker only after its
outputs are in the store, never after a failed upload, reads that wait for what is still
uploading; on moto's S3 server through the stage runner, and on the scope itself."""

import json
import threading
import time

import fsspec
import pytest

from vlcurate.pipeline import stage as stage_mod
from vlcurate.pipeline import storage, uploads
from vlcurate.pipeline.stats import StageStats


def _keys(prefix: str) -> list[str]:
    fs = fsspec.filesystem("s3")
    root = prefix.removeprefix("s3://").rstrip("/") + "/"
    return sorted(k.removeprefix(root) for k in fs.find(root))


class _Copies(stage_mod.Stage):
    """Each unit writes its input's text to ``OUT/NAME.txt``, reads it back (in the same unit,
    while it may still be uploading) and writes ``OUT/NAME.len``; unit ``broken`` also writes
    to a bucket that does not exist, so that upload fails in the background."""

    name = "copies"

    def __init__(self, output: str, inputs: list[str]):
        self.output, self.inputs = output, inputs

    def units(self):
        return [stage_mod.Unit(u.rsplit("/", 1)[-1].split(".")[0], u) for u in self.inputs]

    def process(self, unit, device="cpu"):
        text = storage.read_text(unit.input)
        copy = storage.join(self.output, f"{unit.name}.txt")
        storage.write_text_atomic(copy, text)
        storage.write_text_atomic(storage.join(self.output, f"{unit.name}.len"), str(len(text)))
        assert storage.read_text(copy) == text  # waits for its own upload
        assert storage.isfile(copy)
        if unit.name == "broken":
            storage.write_text_atomic("s3://no-such-bucket-for-curate/x.txt", text)
        stats = StageStats(self.name)
        stats.main.keep()
        return stats


def _inputs(root: str, names: list[str]) -> list[str]:
    fs = fsspec.filesystem("s3")
    urls = [storage.join(root, "in", f"{name}.txt") for name in names]
    for url in urls:
        fs.pipe(url, url.encode() * 1000)
    return urls


def test_markers_come_with_their_outputs_and_reads_see_what_is_uploading(s3):
    root = s3.prefix("uploads")
    out = storage.join(root, "out")
    names = [f"u{i}" for i in range(6)]
    summary = stage_mod.run_stage(_Copies(out, _inputs(root, names)))
    assert summary["kept"] == 6
    expected = [f"{n}.{s}" for n in names for s in ("len", "txt")]
    expected += [f"_done/{n}.json" for n in names] + ["stats.json"]
    assert _keys(out) == sorted(expected)


def test_a_failed_upload_leaves_no_marker_and_fails_the_run(s3):
    root = s3.prefix("uploads-fail")
    out = storage.join(root, "out")
    inputs = _inputs(root, ["a", "broken"])
    with pytest.raises(Exception, match="NoSuchBucket|does not exist|no-such-bucket"):
        stage_mod.run_stage(_Copies(out, inputs))
    assert "_done/broken.json" not in _keys(out)
    assert "_done/a.json" in _keys(out)
    summary = stage_mod.run_stage(_Copies(out, inputs[:1]))  # resumes what was done
    assert summary["units_resumed"] == 1
    assert json.loads(storage.read_text(storage.join(out, "_done", "a.json")))["unit"] == "a"


def test_a_step_runs_after_every_upload_before_it_and_never_after_a_failure():
    done: list[str] = []

    def upload(name: str, seconds: float, fail: bool = False):
        def finish():
            time.sleep(seconds)
            if fail:
                raise OSError(f"{name} failed")
            done.append(name)

        return finish

    with uploads.in_background(threads=4, units_ahead=8) as scope:
        assert uploads.active() is scope
        scope.submit("b/slow", upload("slow", 0.3))
        scope.submit("b/quick", upload("quick", 0.0))
        scope.after(lambda: done.append("marker 1"))
        scope.submit("b/next", upload("next", 0.0))
        scope.settle("b/next")
        assert "next" in done
    assert done.index("marker 1") > max(done.index("slow"), done.index("quick"))

    done.clear()
    with pytest.raises(OSError, match="bad failed"):
        with uploads.in_background(threads=2) as scope:
            scope.submit("b/bad", upload("bad", 0.1, fail=True))
            scope.after(lambda: done.append("marker"))
    assert done == []
    assert uploads.active() is None


def test_a_failing_unit_leaves_the_markers_of_the_units_before_it():
    done: list[str] = []

    def slow_upload():
        time.sleep(0.3)
        done.append("upload 1")

    with pytest.raises(RuntimeError, match="unit 2"):
        with uploads.in_background(threads=1) as scope:  # the marker waits for a thread
            scope.submit("b/1", slow_upload)
            scope.after(lambda: done.append("marker 1"))
            raise RuntimeError("unit 2 failed")
    assert done == ["upload 1", "marker 1"]


def test_other_threads_write_at_once():
    with uploads.in_background() as scope:
        seen = []
        thread = threading.Thread(target=lambda: seen.append(uploads.active()))
        thread.start()
        thread.join()
        assert seen == [None] and uploads.active() is scope
