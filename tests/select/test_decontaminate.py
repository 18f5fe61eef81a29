"""Decontamination (``select.decontaminate``) on the mini web's scored shards, with real faiss,
the mini web's trained CLIP and the score stage's pHash.

The eval set: six pictures the mini web serves (four photos, two shape scenes) as the site holds
them, each with planted copies in the pool (exact, re-encoded, resized, cropped, watermarked),
plus 50 held-out scenes that are in no pool. Every copy of an eval picture must go as
``eval_duplicate`` (a watermarked copy may go or stay), and nothing else.

The pool was downloaded in img2dataset's ``border`` mode (padded to 128 px squares); the eval
shards are framed the same way before hashing, so the pictures meet at 0 bits. The mini web's
CLIP puts distinct scenes of one layout at cosines up to 0.99, so the shard tests leave the
cosine-only rule off (``semantic_min_cosine: null``) and let pHash + CLIP decide.
"""

import io
import tarfile

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.pairs import KEEP_ALL
from vlcurate.pipeline.config import ConfigError
from vlcurate.pipeline.recipe import parse_recipe
from vlcurate.pipeline.select.config import Decontaminate, SelectConfig
from vlcurate.pipeline.select.stage import select
from vlcurate.pipeline.storage import InputError

pytestmark = [pytest.mark.spark, pytest.mark.slow]

CORE = (None, "exact", "reencoded", "resized", "cropped")  # None: the picture itself
DISTRACTORS = 50


def recipe(eval_section, **select_section):
    section = {"dedup": {"exact": False}, "decontaminate": eval_section, **select_section}
    return parse_recipe({**KEEP_ALL, "select": section})


def run(root, out, r, report=None):
    stats = select(
        str(root / "shards"), str(root / "scores"), r, str(out), progress=False, report=report
    )
    return stats, pq.read_table(out / "selection.parquet").to_pylist()


def add(tar, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="module")
def evals(scored_miniweb, miniweb_clip, tmp_path_factory):
    """``(root, group of each url, {eval key: group}, eval shard)``: a url's group is the id
    of the picture it shows (a copy's original)."""
    root, manifest = scored_miniweb
    by_id = manifest.by_id()

    def group(sample):
        while sample.duplicate_of:
            sample = by_id[sample.duplicate_of]
        return sample.id

    urls = set(pq.read_table(root / "scores" / "scores", columns=["url"])["url"].to_pylist())
    group_of = {s.image_url: group(s) for s in manifest.samples if s.image_url in urls}
    copied = sorted(
        {group_of[s.image_url] for s in manifest.samples if s.image_url in urls and s.duplicate_of}
    )
    chosen = copied[::2]
    folder = tmp_path_factory.mktemp("evals")
    shard = folder / "00000.tar"
    keys = {}
    with tarfile.open(shard, "w") as tar:
        for i, original in enumerate(chosen):
            keys[f"eval{i:04d}"] = original
            add(
                tar, f"eval{i:04d}.jpg", (root / "web" / "site" / by_id[original].path).read_bytes()
            )
            add(tar, f"eval{i:04d}.txt", b"an eval picture")
        with tarfile.open(miniweb_clip["heldout_shards"]) as heldout:
            for member in heldout.getmembers()[: 3 * DISTRACTORS]:
                add(tar, f"h{member.name}", heldout.extractfile(member).read())
    return root, manifest, group_of, keys, shard


def kinds(manifest) -> dict:
    return {s.image_url: s.duplicate_kind for s in manifest.samples}


def test_copies_of_eval_images_go_and_nothing_else(evals, tmp_path):
    root, manifest, group_of, keys, shard = evals
    stats, rows = run(root, tmp_path, recipe({"eval": [str(shard)], "semantic_min_cosine": None}))
    assert stats["in"] == stats["kept"] + sum(stats["dropped"].values()) == len(rows)
    assert set(stats["dropped"]) == {"eval_duplicate"}
    assert stats["decontaminate_eval_images"] == len(keys) + DISTRACTORS
    kind = kinds(manifest)
    mine = [r for r in rows if group_of[r["url"]] in keys.values()]
    assert {kind[r["url"]] for r in mine} >= {None, "exact", "resized", "cropped"}
    for r in rows:
        if group_of[r["url"]] not in keys.values():
            assert r["reason"] is None, (r["url"], r["eval_match"])
            assert r["eval_match"] is None
        elif kind[r["url"]] in CORE or r["reason"] is not None:
            assert r["reason"] == "eval_duplicate", (r["url"], kind[r["url"]])
            file, key = r["eval_match"].rsplit(":", 1)
            assert file == str(shard) and keys[key] == group_of[r["url"]]
            assert r["eval_phash_distance"] <= 16 and r["eval_cosine"] >= 0.9
    exact = [r for r in mine if kind[r["url"]] in (None, "exact", "reencoded")]
    assert exact and all(r["eval_phash_distance"] == 0 for r in exact)


def test_the_report_lists_each_beside_its_eval_image(evals, tmp_path):
    root, _, _, _, shard = evals
    r = recipe({"eval": [str(shard)], "semantic_min_cosine": None})
    stats, rows = run(root, tmp_path, r, report="")
    html = (tmp_path / "report.html").read_text()
    dropped = [x for x in rows if x["reason"] == "eval_duplicate"]
    assert f"Eval duplicates: {len(dropped)}</h2>" in html
    table = html[html.index("<h2>Eval duplicates") : html.index("<h2>Samples</h2>")]
    for x in dropped:
        assert f"<td>{x['uid']}</td><td>{x['url']}</td><td>{x['eval_match']}</td>" in table
    assert table.count('<img class="thumb" src="data:image/jpeg') == 2 * len(dropped)


def test_eval_duplicates_go_before_the_rules(evals, tmp_path):
    """A copy of an eval image is named as one whatever rule would have dropped it too."""
    root, _, group_of, keys, shard = evals
    section = {"eval": [str(shard)], "semantic_min_cosine": None}
    _, alone = run(root, tmp_path / "alone", recipe(section))
    stats, ruled = run(root, tmp_path / "ruled", recipe(section, clip_top_fraction=0.3))
    assert stats["in"] == stats["kept"] + sum(stats["dropped"].values())
    first = {x["uid"] for x in alone if x["reason"] == "eval_duplicate"}
    assert {x["uid"] for x in ruled if x["reason"] == "eval_duplicate"} == first
    assert "clip_similarity" in stats["dropped"]


def test_embeddings_only_eval_sets_match_by_cosine(evals, tmp_path):
    """clip-retrieval's float16 rows of the eval pictures (here the pool's own embeddings of
    them, the same CLIP): no pHash, so the cosine alone decides (>= 0.99: every exact,
    re-encoded and resized copy is at 1.0; distinct pictures at most 0.97)."""
    root, manifest, group_of, keys, _ = evals
    first = {}
    for shard in sorted((root / "scores" / "metadata").glob("*.parquet")):
        emb = np.load(root / "scores" / "img_emb" / f"{shard.stem}.npy")
        for i, row in enumerate(pq.read_table(shard).to_pylist()):
            first.setdefault(row["url"], emb[i])
    originals = {s.id: s.image_url for s in manifest.samples}
    rows16 = np.stack([first[originals[g]] for g in keys.values()]).astype(np.float16)
    np.save(tmp_path / "evals.npy", rows16)
    r = recipe({"eval": [str(tmp_path / "evals.npy")], "semantic_min_cosine": 0.99})
    stats, rows = run(root, tmp_path / "out", r)
    assert stats["in"] == stats["kept"] + sum(stats["dropped"].values())
    kind = kinds(manifest)
    for x in rows:
        if group_of[x["url"]] not in keys.values():
            assert x["reason"] is None, (x["url"], x["eval_cosine"])
        elif kind[x["url"]] in (None, "exact", "reencoded", "resized"):
            assert x["reason"] == "eval_duplicate", (x["url"], kind[x["url"]])
        if x["reason"] == "eval_duplicate":
            assert x["eval_match"].startswith(f"{tmp_path / 'evals.npy'}#")
            assert x["eval_cosine"] >= 0.99
            assert x["eval_phash_distance"] is None


def test_an_eval_set_of_other_pictures_drops_nothing(evals, tmp_path):
    root, _, _, _, shard = evals
    others = tmp_path / "others.tar"
    with tarfile.open(shard) as tar, tarfile.open(others, "w") as out:
        for member in tar.getmembers():
            if member.name.startswith("h"):
                add(out, member.name, tar.extractfile(member).read())
    stats, rows = run(
        root, tmp_path / "out", recipe({"eval": [str(others)], "semantic_min_cosine": None})
    )
    assert stats["dropped"] == {} and stats["kept"] == len(rows)
    assert stats["decontaminate_eval_images"] == DISTRACTORS


def test_a_missing_eval_set_fails_naming_the_field(evals, tmp_path):
    root, _, _, _, shard = evals
    r = recipe([str(shard), str(tmp_path / "gone.tar")])
    with pytest.raises(InputError, match="^select.decontaminate.eval: not found: .*gone.tar"):
        run(root, tmp_path / "out", r)
    assert not (tmp_path / "out" / "selection.parquet").exists()


def test_an_eval_shard_without_a_decodable_image_fails_naming_the_field(evals, tmp_path):
    root, _, _, _, _ = evals
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as tar:
        add(tar, "000.jpg", b"not a picture")
    with pytest.raises(InputError, match=r"^select.decontaminate.eval: no eval image \(1 did"):
        run(root, tmp_path / "out", recipe([str(bad)]))
    assert not (tmp_path / "out" / "selection.parquet").exists()


# --- no pool needed -----------------------------------------------------------------------------


def test_a_list_is_the_eval_paths_with_the_default_thresholds():
    d = SelectConfig(decontaminate=["a.tar", "b.npy"]).decontaminate
    assert d == Decontaminate(eval=["a.tar", "b.npy"])
    assert (d.phash_max_distance, d.phash_min_cosine, d.semantic_min_cosine) == (16, 0.9, 0.95)
    assert SelectConfig(decontaminate="a.tar").decontaminate.eval == ["a.tar"]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ([], "select.decontaminate.eval: give one path"),
        ({"eval": ["a"], "phash_max_distance": 65}, "select.decontaminate.phash_max_distance: 65"),
        ({"eval": ["a"], "semantic_min_cosine": 1.5}, "select.decontaminate.semantic_min_cosine"),
        ({"eval": ["a"], "phash_max_distance": None, "semantic_min_cosine": None}, "both null"),
        ({"eval": ["a"], "cosine": 0.9}, "select.decontaminate: unknown key 'cosine'"),
    ],
)
def test_bad_settings_fail_naming_the_field(section, message):
    with pytest.raises(ConfigError, match=message):
        SelectConfig(decontaminate=section)
