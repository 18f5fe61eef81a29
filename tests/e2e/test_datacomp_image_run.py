"""`curate run` with the datacomp-image-clip recipe on the mini web (its CLIP and held-out
mini-web scenes standing in for ViT-L/14 and ImageNet): DataComp's caption filter before
download, then the intersection of the CLIP-score top 30% and the image-based filter, every
stage's stats adding up, and each kept sample passing both halves."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from vlcurate import miniweb
from vlcurate.jobs.run import main as run_main
from vlcurate.pipeline.recipe import BUNDLED
from vlcurate.schemas.select import IMAGE_CLUSTER_UNMATCHED

pytestmark = [pytest.mark.spark, pytest.mark.slow]

POINTS = 4  # points per centre: the mini web's ~80 images get ~20 centres, not 100,000


def test_recipe(path, reference: str) -> str:
    recipe = yaml.safe_load((BUNDLED / "datacomp-image-clip.yaml").read_text())
    recipe["name"] = "datacomp-image-clip-test"
    recipe["download"] = {"image_size": 64, "resize_mode": "keep_ratio_largest"}
    recipe["score"] = {"model": "tiny-clip", "pretrained": "miniweb", "watermark": "none"}
    recipe["score"].update(nsfw="none", faces="none", workers=1, batch_size=16)
    recipe["select"]["clip_model"] = "tiny-clip"
    recipe["select"]["image_filter"].update(reference=[reference], points_per_centroid=POINTS)
    recipe["select"]["samples_per_shard"] = 20
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


test_recipe.__test__ = False  # a helper, not a test


@pytest.fixture(scope="module")
def road(spark, miniweb_clip, tmp_path_factory):
    root = tmp_path_factory.mktemp("datacomp-image-run")
    port = miniweb.free_port()
    miniweb.build(root / "web", seed=4, port=port, n_shapes=40)
    recipe = test_recipe(root / "recipe.yaml", miniweb_clip["heldout_shards"])
    argv = [recipe, "--input", str(root / "web" / miniweb.WARC_FILE), "--output", str(root / "out")]
    argv += ["--master", "local[2]", "--allow-private-network", f"127.0.0.1:{port}"]
    argv += ["--no-progress", "--download-args"]
    argv += ["--timeout 2 --processes 1 --threads 16 --host-concurrency 16 --host-delay 0"]
    with miniweb.serve(root / "web", port=port, slow_seconds=3):
        assert run_main(argv) == 0
    return root / "out"


def test_every_stage_adds_up_and_the_caption_filter_ran_first(road):
    for stage in ("extract", "candidates", "shards", "scores", "final"):
        stats = json.loads((road / stage / "stats.json").read_text())
        assert stats["in"] == stats["kept"] + sum(stats["dropped"].values()), stage
    dropped = json.loads((road / "candidates" / "stats.json").read_text())["dropped"]
    assert dropped.get("language_not_wanted", 0) > 0  # the French, German, Spanish pages
    captions = pq.read_table(road / "candidates" / "pairs", columns=["caption"])["caption"]
    assert all(len(c) > 5 and len(c.split()) > 1 for c in captions.to_pylist())


def test_kept_samples_pass_both_halves(road):
    stats = json.loads((road / "final" / "stats.json").read_text())
    assert stats["image_filter_centroids_asked"] == 100_000
    selection = pq.read_table(road / "final" / "selection.parquet").to_pylist()
    decoded = [r for r in selection if r["image_cluster"] is not None]  # the clustered pool
    assert stats["image_filter_centroids"] == max(1, len(decoded) // POINTS)
    assert 1 <= stats["image_filter_clusters_matched"] <= stats["image_filter_centroids"]
    kept = [r for r in selection if r["reason"] is None]
    assert len(kept) == stats["kept"] > 0
    threshold = stats["clip_threshold"]
    sims = np.array([r["clip_tiny_clip_sim"] for r in decoded])
    assert abs(np.mean(sims >= threshold) - 0.3) < 0.1  # the pool's top 30%
    assert all(r["clip_tiny_clip_sim"] >= threshold for r in kept)
    unmatched = {r["image_cluster"] for r in selection if r["reason"] == IMAGE_CLUSTER_UNMATCHED}
    assert not unmatched & {r["image_cluster"] for r in kept}  # a centre is matched or it is not
    html = (road / "report.html").read_text()
    assert f"Image-based filter: {stats['image_filter_centroids']} k-means centres" in html
