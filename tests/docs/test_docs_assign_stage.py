"""`curate docs assign` on the stage contract, on real files: documents, img2dataset-style
shards of real JPEGs and the score stage's tables, built here. One shard per run of input
documents, a SIGKILL mid-run resumed to the same outputs, other settings rebuilding the whole
output, and bad values refused before any work."""

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import webdataset as wds
from PIL import Image

from vlcurate.jobs import cli
from vlcurate.pipeline.docs.interleave import IN_DROPPED_DOC, NOT_DOWNLOADED
from vlcurate.schemas.extract import DOC_SCHEMA

SENTENCES = [
    "A red circle sits on a white wall.",
    "The blue square is larger than the circle.",
    "Two green triangles point at the sky.",
    "Nobody knows who painted them.",
]
N_DOCS, IMAGES_PER_DOC, DIM = 24, 3, 64  # tiny-clip embeds in 64 dimensions


def make_docs(folder: Path) -> list[dict]:
    docs = []
    for d in range(N_DOCS):
        nodes = [{"type": "text", "text": " ".join(SENTENCES), "url": None, "alt": None}]
        nodes += [
            {"type": "image", "text": None, "url": f"http://x/{d}/{k}.jpg", "alt": f"picture {k}"}
            for k in range(IMAGES_PER_DOC)
        ]
        docs.append(
            {
                "doc_id": f"doc-{d:03d}",
                "page_url": f"http://x/page/{d % 20}",  # pages 0..3 seen twice
                "title": None,
                "page_lang": "en",
                "charset": "utf-8",
                "nodes": nodes,
                "warc_path": "x.warc.gz",
                "warc_record_id": f"<urn:uuid:{d}>",
                "warc_offset": 0,
            }
        )
    (folder / "docs").mkdir(parents=True)
    for part, rows in enumerate((docs[:14], docs[14:])):  # two docs files
        table = pa.Table.from_pylist(rows, schema=DOC_SCHEMA)
        pq.write_table(table, folder / "docs" / f"part-{part}.parquet")
    return docs


def jpeg(rng) -> bytes:
    pixels = rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG")
    return buf.getvalue()


def make_shard(shards: Path, scores: Path, docs: list[dict]) -> None:
    """One downloaded shard of every image but the last of each document (not downloaded),
    and its scores: random unit embeddings, distinct pHashes, no faces, safe."""
    rng = np.random.default_rng(0)
    downloaded, scored = [], []
    shards.mkdir()
    with wds.TarWriter(str(shards / "00000.tar")) as tar:
        for d, doc in enumerate(docs):
            for k in range(IMAGES_PER_DOC - 1):
                key = f"{len(scored):09d}"
                tar.write({"__key__": key, "jpg": jpeg(rng), "txt": "picture"})
                downloaded.append(
                    {
                        "key": key,
                        "status": "success",
                        "url": f"http://x/{d}/{k}.jpg",
                        "doc_id": doc["doc_id"],
                        "image_index": k,
                        "original_width": 200,
                        "original_height": 200,
                    }
                )
                scored.append(
                    {
                        "key": key,
                        "status": "ok",
                        "index": len(scored),
                        "nsfw_p": 0.0,
                        "face_count": 0,
                        "phash": f"{len(scored) + 1:016x}",
                        "width": 200,
                        "height": 200,
                    }
                )
    pq.write_table(pa.Table.from_pylist(downloaded), shards / "00000.parquet")
    for sub in ("scores", "metadata", "img_emb", "_done"):
        (scores / sub).mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(scored), scores / "scores" / "00000.parquet")
    keys = [{"key": s["key"]} for s in scored]
    pq.write_table(pa.Table.from_pylist(keys), scores / "metadata" / "00000.parquet")
    emb = rng.normal(size=(len(scored), DIM)).astype(np.float32)
    np.save(scores / "img_emb" / "00000.npy", emb / np.linalg.norm(emb, axis=1, keepdims=True))
    clip = {"model": "tiny-clip", "pretrained": None}
    marker = {"unit": "00000", "settings": clip, "_settings": clip}
    (scores / "_done" / "00000.json").write_text(json.dumps(marker))


@pytest.fixture
def inputs(tmp_path) -> Path:
    docs = make_docs(tmp_path / "docs")
    make_shard(tmp_path / "shards", tmp_path / "scores", docs)
    recipe = {"name": "t", "version": 1, "source": "test", "filters": [], "docs": {}}
    recipe["assign"] = {"min_sim": -1.0}  # random embeddings: keep every match
    (tmp_path / "recipe.yaml").write_text(json.dumps(recipe))
    return tmp_path


def assign_argv(root: Path, out: Path, *extra: str) -> list[str]:
    return [
        "docs",
        "assign",
        "--docs",
        str(root / "docs"),
        "--shards",
        str(root / "shards"),
        "--scores",
        str(root / "scores"),
        "--recipe",
        str(root / "recipe.yaml"),
        "--output",
        str(out),
        "--docs-per-shard",
        "4",
        "--no-progress",
        *extra,
    ]


def exit_code(argv: list[str]) -> int:
    """What `curate` exits with: its return value, or the code of a SystemExit (a flag out of
    range exits 2 as argparse does)."""
    try:
        return cli.main(argv)
    except SystemExit as e:
        return e.code


def shard_contents(out: Path) -> dict[str, dict[str, bytes]]:
    contents = {}
    for path in sorted(out.glob("*.tar")):
        with tarfile.open(path) as t:
            contents[path.name] = {m.name: t.extractfile(m).read() for m in t.getmembers()}
    return contents


def test_one_shard_per_run_of_input_documents(inputs, capsys):
    out = inputs / "out"
    assert cli.main(assign_argv(inputs, out)) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["in"] == N_DOCS == stats["kept"] + sum(stats["dropped"].values())
    images = stats["images"]
    assert images["in"] == N_DOCS * IMAGES_PER_DOC
    assert images["in"] == images["kept"] + sum(images["dropped"].values())
    assert images["dropped"][NOT_DOWNLOADED] == N_DOCS
    # 14 + 10 documents in two files, 4 to a shard, never across files: 4 + 3 shards
    assert stats["shards"] == 7 and stats["units"]["kept"] == 7
    assert sorted(p.name for p in out.glob("*.tar")) == [f"{n:05d}.tar" for n in range(7)]
    assert (stats["model"], stats["recipe"]) == ("tiny-clip", "t/1")
    rows = pq.read_table(out / "images").to_pylist()
    assert len(rows) == images["in"] and (out / "report.html").exists()
    samples = [
        json.loads(v)
        for s in shard_contents(out).values()
        for k, v in s.items()
        if k.endswith(".json")
    ]
    assert len(samples) == stats["kept"]
    flags = {s["doc_id"]: s["could_have_url_duplicate"] for s in samples}
    assert flags["doc-000"] == 1 and flags["doc-019"] == 0  # page 0 is doc 0's and doc 20's
    assert "docs assign (t/1)" in capsys.readouterr().out


def test_other_settings_rebuild_the_whole_output(inputs):
    out = inputs / "out"
    assert cli.main(assign_argv(inputs, out)) == 0
    first = json.loads((out / "stats.json").read_text())
    recipe = json.loads((inputs / "recipe.yaml").read_text())
    recipe["assign"] = {"min_sim": -1.0, "core": True}  # 4 sentences, 2 images: never core
    (inputs / "recipe.yaml").write_text(json.dumps(recipe))
    assert cli.main(assign_argv(inputs, out)) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["units_resumed"] == 0 and stats["settings_digest"] != first["settings_digest"]
    assert stats["kept"] == 0 and stats["images"]["dropped"][IN_DROPPED_DOC] > 0
    digests = {json.loads(p.read_text())["settings_digest"] for p in (out / "_done").iterdir()}
    assert digests == {stats["settings_digest"]}
    assert all(not s for s in shard_contents(out).values())  # every shard rebuilt, empty
    again = cli.main(assign_argv(inputs, out))  # the same settings again: all resumed
    assert again == 0 and json.loads((out / "stats.json").read_text())["units_resumed"] == 7


KILLED_RUN = textwrap.dedent(
    """
    import sys, time
    from vlcurate.pipeline.docs.assign_stage import DocsAssignStage
    from vlcurate.pipeline.docs.config import AssignConfig, ShardConfig
    from vlcurate.pipeline.executors import LocalExecutor
    from vlcurate.pipeline.stage import run_stage

    class Slowly(DocsAssignStage):  # the real stage, a unit taking at least half a second
        def _write(self, *args):
            time.sleep(0.5)
            return super()._write(*args)

    root, out = sys.argv[1], sys.argv[2]
    clip = {"model": "tiny-clip", "pretrained": None}
    stage = Slowly(f"{root}/docs", f"{root}/shards", f"{root}/scores", out,
                   AssignConfig(min_sim=-1.0), clip, ShardConfig(4), "t/1")
    run_stage(stage, LocalExecutor(progress=False))
    """
)


def test_a_run_killed_with_sigkill_resumes_to_the_same_outputs(inputs):
    reference = inputs / "reference"
    assert cli.main(assign_argv(inputs, reference, "--no-report")) == 0
    out = inputs / "out"
    run = [sys.executable, "-c", KILLED_RUN, str(inputs), str(out)]
    root = Path(__file__).parent.parent.parent
    child = subprocess.Popen(run, cwd=root, start_new_session=True)
    done, deadline = out / "_done", time.monotonic() + 120
    while len(list(done.glob("*.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    finished = len(list(done.glob("*.json")))
    assert 2 <= finished < 7
    assert cli.main(assign_argv(inputs, out, "--no-report")) == 0
    stats = json.loads((out / "stats.json").read_text())
    expected = json.loads((reference / "stats.json").read_text())
    assert stats.pop("units_resumed") == finished and expected.pop("units_resumed") == 0
    assert stats == expected
    assert shard_contents(out) == shard_contents(reference)
    assert pq.read_table(out / "images").equals(pq.read_table(reference / "images"))
    assert not list(out.rglob("*.tmp-*"))


@pytest.mark.parametrize(
    "assign, flags, message",
    [
        ({"min_sim": 2}, [], "assign.min_sim: 2 is not allowed"),
        ({"nsfw_max": -1}, [], "assign.nsfw_max: -1 is not allowed"),
        ({"faces": "hide"}, [], "assign.faces: 'hide' is not allowed (one of keep, drop_doc)"),
        ({"batch_size": 2.5}, [], "assign.batch_size: 2.5 is not allowed (an integer"),
        ({}, ["--docs-per-shard", "0"], "docs_per_shard: 0 is not allowed"),
    ],
)
def test_bad_values_are_refused_before_any_work(inputs, capsys, assign, flags, message):
    recipe = json.loads((inputs / "recipe.yaml").read_text())
    (inputs / "recipe.yaml").write_text(json.dumps({**recipe, "assign": assign}))
    out = inputs / "out"
    assert exit_code(assign_argv(inputs, out, *flags)) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("error: ") and err.count("\n") == 1
    assert not out.exists()
