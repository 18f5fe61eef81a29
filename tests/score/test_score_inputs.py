"""The score stage takes a raw shard only when it is whole, and drops a malformed sample rather
than the job: real img2dataset-layout shards built here, then damaged as a crash or a full disk
would (a tar cut at a header boundary or inside a member, a missing ``_stats.json`` or parquet
sidecar, fewer samples than the sidecar's successes)."""

import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vlcurate.jobs.score import main
from vlcurate.pipeline.score import inputs
from vlcurate.pipeline.score.shards import read_index
from vlcurate.pipeline.score.stage import score_shards

from .raw_shards import FAST, small_photos, write_raw_shard


def members(tar: str) -> list[tarfile.TarInfo]:
    with tarfile.open(tar) as t:
        return t.getmembers()


def cut_at_header(tar: str, member: int) -> None:
    """The tar ends where ``member`` (its pax header first) begins: what tarfile, and so
    webdataset, reads as a whole tar."""
    os.truncate(tar, members(tar)[member].offset)


def cut_inside(tar: str, member: int) -> None:
    info = members(tar)[member]
    os.truncate(tar, info.offset_data + info.size // 2)


def add_success_row(tar: str) -> None:
    sidecar = inputs.sidecar_path(tar)
    rows = pq.read_table(sidecar).to_pylist()
    rows.append({"key": "lost", "url": "http://x/lost.jpg", "status": "success"})
    pq.write_table(pa.Table.from_pylist(rows), sidecar)


DAMAGE = {
    inputs.TRUNCATED_TAR + "@header": lambda tar: cut_at_header(tar, 6),
    inputs.TRUNCATED_TAR + "@member": lambda tar: cut_inside(tar, 4),
    inputs.NO_STATS_JSON: lambda tar: os.remove(inputs.stats_path(tar)),
    inputs.NO_SIDECAR: lambda tar: os.remove(inputs.sidecar_path(tar)),
    inputs.BAD_SIDECAR: lambda tar: Path(inputs.sidecar_path(tar)).write_text("not parquet"),
    inputs.COUNT_MISMATCH: add_success_row,
}


def test_a_tar_cut_at_a_header_boundary_reads_as_whole_to_tarfile(tmp_path):
    """Why the check walks the headers itself: tarfile (and so webdataset) ends quietly."""
    tar = write_raw_shard(tmp_path, 0, small_photos(5))
    cut_at_header(tar, 6)  # samples 2, 3 and 4 are gone
    assert len(members(tar)) == 6
    assert inputs.check_shard(tar) == inputs.TRUNCATED_TAR


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_each_damage_is_refused_with_its_reason(tmp_path, damage):
    tar = write_raw_shard(tmp_path, 0, small_photos(4))
    assert inputs.check_shard(tar) is None
    DAMAGE[damage](tar)
    assert inputs.check_shard(tar) == damage.split("@")[0]


def test_a_cut_tar_is_refused_when_tarfile_reads_its_headers(tmp_path):
    """Long names (GNU/pax headers) take tarfile's path through the index; a cut is still seen."""
    tar = tmp_path / "00000.tar"
    with tarfile.open(tar, "w", format=tarfile.PAX_FORMAT) as t:
        for i in range(3):
            for ext, data in (("jpg", b"x" * 3000), ("txt", b"caption")):
                info = tarfile.TarInfo(f"{'d' * 120}/{i:04d}.{ext}")
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    with open(tar, "rb") as f:
        found, whole = read_index(f)
    name, offset, size = found[-2]
    assert whole and name.endswith("0002.jpg")
    os.truncate(tar, offset + size // 2)
    with open(tar, "rb") as f:
        assert read_index(f)[1] is False


def test_partial_shards_are_refused_by_name_and_the_others_scored(tmp_path, capsys):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    tars = [write_raw_shard(folder, n, small_photos(3, n)) for n in range(5)]
    cut_at_header(tars[1], 3)
    cut_inside(tars[2], 7)
    os.remove(inputs.stats_path(tars[3]))
    os.remove(inputs.sidecar_path(tars[4]))
    flags = ["--model", "tiny-clip", "--pretrained", "none", "--device", "cpu", "--workers", "0"]
    flags += ["--faces", "none", "--nsfw", "none", "--watermark", "none", "--no-progress"]
    argv = ["--input", str(folder), "--output", str(out), *flags]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "refused 4 shards" in printed and "00001, 00002, 00003, 00004" in printed
    stats = json.loads((out / "stats.json").read_text())
    assert stats["refused_units"] == {"00001": 1, "00002": 1, "00003": 1, "00004": 1}
    assert stats["units"] == {
        "in": 5,
        "kept": 1,
        "dropped": {"no_parquet_sidecar": 1, "no_stats_json": 1, "truncated_tar": 2},
    }
    assert (stats["in"], stats["kept"], stats["shards"]) == (3, 3, 1)
    assert sorted(p.name for p in (out / "_done").iterdir()) == ["00000.json"]
    assert sorted(p.name for p in (out / "scores").iterdir()) == ["00000.parquet"]
    # a refused shard has no marker: once it is whole again, a rerun scores it, and only it
    Path(inputs.stats_path(tars[3])).write_text("{}")
    assert main(argv) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["units_resumed"] == 1 and stats["shards"] == 2 and stats["in"] == 6


def test_malformed_members_are_counted_drops(tmp_path):
    """A .json that is not JSON (or not an object) and a .txt that is not UTF-8 drop their
    sample with a reason; the shard, and every other sample in it, is scored."""
    good = small_photos(3)
    samples = [
        good[0],
        ("not-json", good[1][1], "a caption", b"{'uid': 'not-json'"),
        ("a-list", good[1][1], "a caption", b"[1, 2]"),
        ("latin-1", good[2][1], "caf\xe9 au lait".encode("latin-1")),
        good[2],
    ]
    (tmp_path / "in").mkdir()
    tar = write_raw_shard(tmp_path / "in", 0, samples)
    stats = score_shards([tar], str(tmp_path / "out"), FAST, progress=False)
    assert (stats["in"], stats["kept"]) == (5, 2)
    assert stats["dropped"] == {inputs.BAD_JSON: 2, inputs.BAD_TEXT: 1}
    rows = pq.read_table(tmp_path / "out" / "scores" / "00000.parquet").to_pylist()
    assert [r["status"] for r in rows] == ["ok", "bad_json", "bad_json", "bad_text", "ok"]
    assert [r["uid"] for r in rows] == ["s0-0", None, None, "latin-1", "s0-2"]
    assert rows[3]["caption"] == "caf\ufffd au lait" and rows[3]["bytes"] > 0
    assert all(r["clip_tiny_clip_sim"] is None for r in rows[1:4])
    assert len(np.load(tmp_path / "out" / "img_emb" / "00000.npy")) == 2
    assert (tmp_path / "out" / "_done" / "00000.json").exists()
