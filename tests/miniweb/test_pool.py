"""The mini web's noisy pool (``curate miniweb --pool``): what it holds is what its truth says,
in img2dataset's layout, the same bytes for the same seed, and the score stage takes it."""

import hashlib
import io
import json
import tarfile
from collections import Counter

import pyarrow.parquet as pq
import pytest
from PIL import Image

from vlcurate.jobs import cli
from vlcurate.miniweb import pool, shapes

N = 400


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pool")
    assert cli.main(["miniweb", "--pool", str(N), "--seed", "3", "--output", str(folder)]) == 0
    return folder


def members(tar_path) -> dict[str, dict[str, bytes]]:
    samples: dict[str, dict[str, bytes]] = {}
    with tarfile.open(tar_path) as tar:
        for m in tar.getmembers():
            key, ext = m.name.split(".", 1)
            samples.setdefault(key, {})[ext] = tar.extractfile(m).read()
    return samples


def test_layout_is_img2datasets(written):
    assert sorted(p.name for p in written.iterdir()) == [
        "00000.parquet", "00000.tar", "00000_stats.json", "metadata.json",
    ]  # fmt: skip
    stats = json.loads((written / "00000_stats.json").read_text())
    assert stats["count"] == stats["successes"] == N
    rows = pq.read_table(written / "00000.parquet").to_pylist()
    samples = members(written / "00000.tar")
    assert [r["key"] for r in rows] == sorted(samples) and len(rows) == N
    for row in rows:
        sample = samples[row["key"]]
        assert set(sample) == {"jpg", "txt", "json"}
        assert sample["txt"].decode() == row["caption"] == json.loads(sample["json"])["caption"]
        assert hashlib.sha256(sample["jpg"]).hexdigest() == row["sha256"]
        image = Image.open(io.BytesIO(sample["jpg"]))
        assert (image.width, image.height) == (row["width"], row["height"])
        assert row["uid"] == hashlib.md5((row["caption"] + row["url"]).encode()).hexdigest()
    assert len({r["uid"] for r in rows}) == N  # every URL its own


def test_noise_shares_and_truth(written):
    rows = pq.read_table(written / "00000.parquet").to_pylist()
    counts = Counter(r["noise"] for r in rows)
    for noise, share in pool.MIX.items():
        assert counts[noise] == round(share * N), noise
    assert counts["clean"] == N - sum(round(s * N) for s in pool.MIX.values())
    clean = {r["sha256"]: r for r in rows if r["noise"] == "clean"}
    for row in rows:
        if row["noise"] == "junk_image":
            assert row["kind"] is None and row["caption"] in pool.JUNK_IMAGE_ALTS
        else:
            assert (row["kind"], row["color"]) in pool.CONCEPTS
        if row["noise"] == "duplicate":  # the same bytes and caption as a clean sample
            assert clean[row["sha256"]]["caption"] == row["caption"]
        if row["noise"] == "near_duplicate":
            assert row["sha256"] not in clean
            assert any(c["caption"] == row["caption"] for c in clean.values())
        if row["noise"] == "clean":  # the caption names the picture's first group
            noun = row["kind"] if row["caption"].split()[0] in ("a", "an") else row["kind"] + "s"
            assert f"{row['color']} {noun}" in row["caption"].split(" to the ")[0]
        if row["noise"] == "junk_alt":
            assert not any(k in row["caption"] for k in shapes.KINDS)


def test_concepts_are_skewed_and_metadata_names_them(written):
    rows = pq.read_table(written / "00000.parquet").to_pylist()
    by_concept = Counter((r["kind"], r["color"]) for r in rows if r["kind"])
    top, *_ = by_concept.most_common(1)
    assert top[1] > 5 * (sum(by_concept.values()) / len(pool.CONCEPTS))  # Zipf, not uniform
    entries = json.loads((written / "metadata.json").read_text())
    assert len(entries) == 2 * len(pool.CONCEPTS) == len(set(entries))
    assert "red circle" in entries and "red circles" in entries


def test_same_seed_same_bytes_other_seed_other_pool(written, tmp_path):
    again = tmp_path / "again"
    assert cli.main(["miniweb", "--pool", str(N), "--seed", "3", "--output", str(again)]) == 0
    assert (again / "00000.tar").read_bytes() == (written / "00000.tar").read_bytes()
    other = tmp_path / "other"
    assert cli.main(["miniweb", "--pool", "50", "--seed", "4", "--output", str(other)]) == 0
    assert (other / "00000.tar").read_bytes() != (written / "00000.tar").read_bytes()


def test_the_score_stage_takes_it(written, tmp_path):
    out = tmp_path / "scores"
    argv = ["score", "-i", str(written), "-o", str(out), "--model", "tiny-clip"]
    argv += ["--pretrained", "none", "--nsfw", "none", "--watermark", "none", "--faces", "none"]
    assert cli.main([*argv, "--device", "cpu", "--batch-size", "64", "--no-progress"]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["in"] == stats["kept"] == N
