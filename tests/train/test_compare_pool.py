"""`curate compare` on the mini web's noisy pool, as benchmarks/curation.py runs it at scale:
several seeds per recipe (the table gives mean and spread), zero-shot on two label fields, and
each selection's make-up from the pool's truth."""

import json

import numpy as np
import pytest

from vlcurate.jobs import cli
from vlcurate.pipeline.train.compare import summarise
from vlcurate.pipeline.train.compare_report import values

pytestmark = pytest.mark.slow

RECIPE = """name: {name}
version: 1
source: a test
filters: []
select:
  {rule}
  dedup: {{exact: false}}
  samples_per_shard: 100
"""


@pytest.fixture(scope="module")
def scored_pool(miniweb_clip, tmp_path_factory):
    root = tmp_path_factory.mktemp("noisy-pool")
    assert cli.main(["miniweb", "--pool", "300", "--seed", "5", "-o", str(root / "pool")]) == 0
    argv = ["score", "-i", str(root / "pool"), "-o", str(root / "scores"), "--model", "tiny-clip"]
    argv += ["--pretrained", "miniweb", "--nsfw", "none", "--watermark", "none", "--faces", "none"]
    assert cli.main([*argv, "--device", "cpu", "--no-progress"]) == 0
    return root


def test_seeds_spread_and_truth(scored_pool, miniweb_clip, tmp_path):
    recipes = []
    for name, rule in (("all", "min_side: 1"), ("clip", "clip_top_fraction: 0.3")):
        path = tmp_path / f"{name}.yaml"
        path.write_text(RECIPE.format(name=name, rule=rule))
        recipes.append(str(path))
    out = tmp_path / "compare"
    argv = ["compare", *recipes, "--shards", str(scored_pool / "pool"), "--scores"]
    argv += [str(scored_pool / "scores"), "--eval-shards", miniweb_clip["heldout_shards"]]
    argv += ["--label-field", "kind", "color", "--truth-field", "noise", "--seeds", "2"]
    argv += ["--samples", "96", "--batch-size", "32", "--workers", "0", "--device", "cpu"]
    assert cli.main([*argv, "--output", str(out), "--no-progress"]) == 0
    result = json.loads((out / "compare.json").read_text())
    rows = {r["recipe"]: r for r in result["rows"]}
    for row in rows.values():
        assert [r["seed"] for r in row["runs"]] == [0, 1]
        assert (out / row["recipe"] / "train-seed1" / "final.pt").exists()
        assert set(row["zeroshot"]) == {"kind", "color"}
        assert sum(row["truth"].values()) == row["kept"]
        runs = [values(r) for r in row["runs"]]
        for column, mean in values(row).items():
            assert mean == pytest.approx(np.mean([r[column] for r in runs]))
            assert row["spread"][column] == pytest.approx(np.std([r[column] for r in runs], ddof=1))
    assert rows["all"]["truth"]["mismatched"] == 100  # a third of 300
    clip = rows["clip"]["truth"]  # the CLIP cut keeps true captions, not mismatched ones
    assert clip.get("mismatched", 0) < 0.1 * rows["clip"]["kept"] < clip["clean"]
    table = (out / "compare.md").read_text()
    assert "seeds 0..1, mean ± sd" in table and " ± " in table.split("\n")[4]
    assert "| clip | 90 |" in table and "mismatched" in table  # the make-up table
    html = (out / "report.html").read_text()
    assert "<table>" in html and "data:image/png;base64," in html and "zero-shot kind" in html


def test_summarise_one_run_has_no_spread():
    run = {
        "seed": 0,
        "steps": 3,
        "loss": 1.5,
        "retrieval": {
            "n": 10,
            **{
                w: {"R@1": 0.1, "R@5": 0.5, "R@10": 0.9} for w in ("image_to_text", "text_to_image")
            },
        },
        "zeroshot": {"kind": {"top1": 0.25}},
    }
    row = summarise([run])
    assert values(row) == values(run) and set(row["spread"].values()) == {0.0}
    assert row["retrieval"]["n"] == 10 and row["steps"] == 3
