"""The select stage on the mini web's scored shards: planted duplicates, the manifest, uids,
face blurring, resume, bad input, Spark per-cluster dedup, and open_clip's own trainer reading
the final shards."""

import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from tests.pairs import KEEP_ALL
from vlcurate.jobs import selection as select_job
from vlcurate.pipeline.recipe import parse_recipe
from vlcurate.pipeline.score.clip import CONFIGS
from vlcurate.pipeline.select.stage import select
from vlcurate.pipeline.storage import InputError

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SAME_IMAGE = ("exact", "resized", "reencoded")  # what sha256 and pHash must catch


def recipe(**select_section):
    return parse_recipe({**KEEP_ALL, "select": select_section})


@pytest.fixture(scope="module")
def scored(scored_miniweb):
    return scored_miniweb


def run_select(root, out, r, **kw):
    return select(str(root / "shards"), str(root / "scores"), r, str(out), progress=False, **kw)


def selection(out) -> list[dict]:
    return pq.read_table(out / "selection.parquet").to_pylist()


def test_planted_duplicates_go_and_distinct_images_stay(scored, tmp_path):
    root, manifest = scored
    run_select(root, tmp_path, recipe(dedup={"exact": True, "phash_max_distance": 2}), report=None)
    rows = {r["url"]: r for r in selection(tmp_path)}
    truth = {s.image_url: s for s in manifest.samples if s.image_url in rows}
    groups: dict[str, list] = {}
    for url, s in truth.items():
        root_id = s.duplicate_of if s.duplicate_kind in SAME_IMAGE else s.id
        groups.setdefault(root_id, []).append(rows[url])
    planted = [g for g in groups.values() if len(g) > 1]
    assert len(planted) >= 4
    for group in planted:  # one survivor per group: the best-ranked (highest CLIP similarity)
        kept = [r for r in group if r["reason"] is None]
        assert len(kept) == 1, [(r["url"], r["reason"]) for r in group]
        assert kept[0]["rank"] == min(r["rank"] for r in group)
        for r in group:
            if r["reason"] is not None:
                assert r["reason"] in ("duplicate_exact", "duplicate_phash")
                assert r["duplicate_of"] in {x["uid"] for x in group}
    for group in groups.values():  # every other picture survives
        if len(group) == 1:
            assert group[0]["reason"] is None, (group[0]["url"], group[0]["reason"])


def test_cropped_copies_go_with_phash_and_the_trained_clip(scored, tmp_path):
    """A 6% crop moves the pHash 12-16 bits, as far as some distinct scenes; the mini web's
    trained CLIP confirms the pair (image cosine 0.94-1.0 for crops, at most 0.47 for distinct
    pictures within 16 bits), so pHash <= 16 with CLIP cosine >= 0.9 removes every crop and no
    distinct picture. Watermarked copies (12-20 bits) may go or stay."""
    root, manifest = scored
    dedup = {"exact": True, "phash_max_distance": 16, "phash_min_cosine": 0.9}
    run_select(root, tmp_path, recipe(dedup=dedup), report=None)
    rows = {r["url"]: r for r in selection(tmp_path)}
    truth = {s.image_url: s for s in manifest.samples if s.image_url in rows}
    group_of = {url: s.duplicate_of or s.id for url, s in truth.items()}
    by_uid = {r["uid"]: url for url, r in rows.items()}
    crops = [url for url, s in truth.items() if s.duplicate_kind == "cropped"]
    assert len(crops) >= 4
    groups: dict[str, list[str]] = {}
    for url, group in group_of.items():
        groups.setdefault(group, []).append(url)
    for members in groups.values():
        for url in members:  # nothing goes for a picture of another group
            if rows[url]["reason"] is not None:
                assert rows[url]["reason"] in ("duplicate_exact", "duplicate_phash"), url
                assert group_of[by_uid[rows[url]["duplicate_of"]]] == group_of[url]
        kept = [u for u in members if rows[u]["reason"] is None]
        unmarked = [u for u in kept if truth[u].duplicate_kind != "watermarked"]
        assert len(unmarked) <= 1, [(u, truth[u].duplicate_kind) for u in kept]
        if len(members) == 1:
            assert kept == members, (members, rows[members[0]]["reason"])
    for crop in crops:  # each crop goes, unless it is the best of its group and the rest go
        others = [u for u in groups[group_of[crop]] if u != crop]
        if rows[crop]["reason"] is None:
            marked = {u for u in others if truth[u].duplicate_kind == "watermarked"}
            assert all(rows[u]["reason"] for u in set(others) - marked)
        else:
            assert rows[crop]["reason"] == "duplicate_phash"


def test_manifest_shards_and_uids_add_up(scored, tmp_path):
    import webdataset as wds

    root, _ = scored
    r = recipe(
        clip_top_fraction=0.8,
        nsfw_max=0.5,
        min_side=64,
        max_aspect_ratio=3.0,
        samples_per_shard=30,
        dedup={"exact": True, "phash_max_distance": 2},
    )
    stats = run_select(root, tmp_path, r)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["in"] == counts["kept"] + sum(counts["dropped"].values())
    assert stats["in"] == len(pq.read_table(root / "scores" / "scores"))
    assert sum(s["samples"] for s in manifest["shards"]) == counts["kept"]
    assert all(s["samples"] == 30 for s in manifest["shards"][:-1])
    assert {"clip_similarity", "duplicate_exact"} <= set(counts["dropped"])
    assert (
        manifest["models"]["model"] == "tiny-clip" and manifest["models"]["pretrained"] == "miniweb"
    )
    keys, seen_uids = [], []
    for shard in manifest["shards"]:
        data = (tmp_path / f"{shard['name']}.tar").read_bytes()
        assert hashlib.sha256(data).hexdigest() == shard["sha256"]
        for sample in wds.WebDataset(str(tmp_path / f"{shard['name']}.tar"), shardshuffle=False):
            meta = json.loads(sample["json"])
            keys.append(sample["__key__"])
            seen_uids.append(meta["uid"])
            assert sample["txt"].decode() == meta["caption"]
            for field in (
                "clip_tiny_clip_sim",
                "nsfw_p",
                "face_count",
                "phash",
                "page_url",
                "warc_record_id",
                "warc_offset",
                "source_shard",
                "source_key",
            ):
                assert field in meta
            Image.open(io.BytesIO(sample["jpg"])).load()
    assert len(keys) == len(set(keys)) == counts["kept"]
    uids = np.load(tmp_path / "uids.npy")
    assert uids.dtype == np.dtype("u8,u8") and len(uids) == counts["kept"]
    assert uids.tolist() == sorted(uids.tolist())
    assert {f"{a:016x}{b:016x}" for a, b in uids.tolist()} == set(seen_uids)
    html = (tmp_path / "report.html").read_text()
    assert "trained by curate on mini-web scenes" in html and "clip_similarity" in html


def test_faces_blurred_in_the_written_image(scored, tmp_path):
    root, _ = scored
    run_select(root, tmp_path, recipe(faces="blur", dedup={"exact": False}), report=None)
    rows = [r for r in selection(tmp_path) if r["face_count"]]
    assert rows, "the mini web has photos with faces"
    row = rows[0]
    with tarfile.open(root / "shards" / f"{row['shard']}.tar") as tar:
        source = Image.open(tar.extractfile(f"{row['key']}.jpg")).convert("L")
    with tarfile.open(tmp_path / f"{row['final_shard']}.tar") as tar:
        written = Image.open(tar.extractfile(f"{row['final_key']}.jpg")).convert("L")
        meta = json.loads(tar.extractfile(f"{row['final_key']}.json").read())
    assert meta["faces_blurred"] == row["face_count"]
    x, y, w, h = json.loads(row["face_boxes"])[0]
    box = (x, y, x + w, y + h)
    before = np.asarray(source.crop(box), dtype=float)
    after = np.asarray(written.crop(box), dtype=float)
    assert np.abs(np.diff(after, axis=1)).mean() < 0.5 * np.abs(np.diff(before, axis=1)).mean()


def test_rerun_resumes_and_rebuilds_for_another_selection(scored, tmp_path):
    root, _ = scored
    r = recipe(samples_per_shard=40)
    run_select(root, tmp_path, r, report=None)
    first = json.loads((tmp_path / "manifest.json").read_text())["shards"]
    (tmp_path / "00001.tar").unlink()  # as if killed before shard 1 was done
    (tmp_path / "_done" / "00001.json").unlink()
    run_select(root, tmp_path, r, report=None)
    assert json.loads((tmp_path / "manifest.json").read_text())["shards"] == first
    assert not list(tmp_path.glob("*.tmp-*"))
    other = recipe(samples_per_shard=40, clip_top_fraction=0.5)
    stats = run_select(root, tmp_path, other, report=None)
    assert stats["units_resumed"] == 0  # another selection: rebuilt, not mixed
    fresh = run_select(root, tmp_path / "fresh", other, report=None)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest == json.loads((tmp_path / "fresh" / "manifest.json").read_text())
    assert sorted(p.name for p in tmp_path.glob("0*")) == sorted(
        p.name for p in (tmp_path / "fresh").glob("0*")
    )
    assert stats == fresh


def test_scores_and_shards_must_match(scored, tmp_path):
    root, _ = scored
    shards, scores = tmp_path / "shards", tmp_path / "scores"
    shutil.copytree(root / "shards", shards)
    shutil.copytree(root / "scores", scores)
    (scores / "_done" / "00001.json").unlink()
    with pytest.raises(InputError, match="scores missing .* 00001"):
        select(str(shards), str(scores), recipe(), str(tmp_path / "out"))
    shutil.copy(root / "scores" / "_done" / "00001.json", scores / "_done" / "00001.json")
    shutil.copy(scores / "_done" / "00000.json", scores / "_done" / "00099.json")
    with pytest.raises(InputError, match="not in the shard folder"):
        select(str(shards), str(scores), recipe(), str(tmp_path / "out"))
    (scores / "_done" / "00099.json").unlink()
    meta = pq.read_table(shards / "00000.parquet")
    pq.write_table(meta.slice(1), shards / "00000.parquet")
    with pytest.raises(InputError, match="shard 00000: its scores"):
        select(str(shards), str(scores), recipe(), str(tmp_path / "out"))
    code = select_job.main(
        [
            "--shards",
            str(root / "shards"),
            "--scores",
            str(root / "scores"),
            "--recipe",
            str(_yaml(tmp_path, clip_minimum=0.3)),
            "--output",
            str(tmp_path / "out"),
        ]
    )
    assert code == 2
    with pytest.raises(InputError, match="thresholds are for ViT-B-32"):
        run_select(root, tmp_path / "out", recipe(clip_min=0.28, clip_model="ViT-B-32"))
    with pytest.raises(InputError, match="watermark_max"):
        run_select(root, tmp_path / "out", recipe(watermark_max=0.8))
    assert not (tmp_path / "out" / "manifest.json").exists()


def _yaml(tmp_path, **select_section):
    import yaml

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**KEEP_ALL, "select": select_section}))
    return path


def test_spark_per_cluster_dedup_matches_in_memory(scored, spark, tmp_path):
    root, _ = scored
    r = recipe(dedup={"exact": False, "semantic_min_cosine": 0.995})
    run_select(root, tmp_path / "local", r, report=None)
    local = {x["uid"]: x["reason"] for x in selection(tmp_path / "local")}
    assert "duplicate_semantic" in local.values()
    for clusters in (1, 3):
        out = tmp_path / f"spark{clusters}"
        run_select(root, out, r, report=None, semantic=select_job.spark_semantic(None, clusters))
        found = {x["uid"]: x["reason"] for x in selection(out)}
        if clusters == 1:
            assert found == local
        else:  # within clusters, a sample sees a subset of its neighbours: never more drops
            assert {u for u, why in found.items() if why} <= {u for u, why in local.items() if why}


def test_open_clip_trainer_reads_the_final_shards(scored, tmp_path):
    root, _ = scored
    final = tmp_path / "final"
    run_select(root, final, recipe(samples_per_shard=40), report=None)
    manifest = json.loads((final / "manifest.json").read_text())
    last = len(manifest["shards"]) - 1
    config = json.loads((CONFIGS / "tiny-clip.json").read_text())
    model_dir = tmp_path / "tiny"
    model_dir.mkdir()
    (model_dir / "open_clip_config.json").write_text(json.dumps({"model_cfg": config}))
    argv = [
        sys.executable,
        "-m",
        "open_clip_train.main",
        "--train-data",
        f"{final}/{{00000..{last:05d}}}.tar",
        "--dataset-type",
        "webdataset",
        "--train-num-samples",
        str(manifest["counts"]["kept"]),
        "--batch-size",
        "16",
        "--epochs",
        "1",
        "--workers",
        "1",
        "--model",
        f"local-dir:{model_dir}",
        "--device",
        "cpu",
        "--precision",
        "fp32",
        "--logs",
        str(tmp_path / "logs"),
        "--name",
        "read-final-shards",
        "--save-frequency",
        "0",
        "--report-to",
        "",
        "--seed",
        "0",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-3000:]
    assert "Train Epoch: 0" in log, log[-3000:]
