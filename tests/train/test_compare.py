"""`curate compare`: two demo recipes on the same scored mini web, the same CLIP trained with the
same budget on each selection, evaluated on the same held-out scenes."""

import json

import pytest
import yaml

from vlcurate.jobs import cli
from vlcurate.pipeline.recipe import BUNDLED

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def demo_variant(tmp_path, name: str) -> str:
    """A bundled demo recipe without its watermark and language cuts: the shared fixture skips
    OCR and its text stage keeps everything, without a language column."""
    data = yaml.safe_load((BUNDLED / f"{name}.yaml").read_text())
    data["select"].pop("watermark_max", None)
    data["select"].pop("languages", None)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_compare_two_demo_recipes(scored_miniweb, miniweb_clip, tmp_path, capsys):
    root, _ = scored_miniweb
    recipes = [demo_variant(tmp_path, "demo"), demo_variant(tmp_path, "demo-nofilter")]
    out = tmp_path / "compare"
    code = cli.main(
        [
            "compare",
            *recipes,
            "--shards",
            str(root / "shards"),
            "--scores",
            str(root / "scores"),
            "--eval-shards",
            miniweb_clip["heldout_shards"],
            "--label-field",
            "color",
            "--samples",
            "640",
            "--batch-size",
            "32",
            "--workers",
            "0",
            "--device",
            "cpu",
            "--output",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    result = json.loads((out / "compare.json").read_text())
    rows = {r["recipe"]: r for r in result["rows"]}
    assert set(rows) == {"demo", "demo-nofilter"}
    assert rows["demo"]["kept"] < rows["demo-nofilter"]["kept"]  # the CLIP cut and dedup
    for row in rows.values():
        assert row["steps"] == 20  # the same budget: 640 samples seen in batches of 32
        assert row["kept"] < 640 and "resampled" in row["notes"][0]  # the mini web is small
        for way in ("image_to_text", "text_to_image"):
            assert set(row["retrieval"][way]) == {"R@1", "R@5", "R@10"}
            assert 0 <= row["retrieval"][way]["R@1"] <= row["retrieval"][way]["R@10"] <= 1
        assert row["retrieval"]["n"] == 500 and 0 <= row["zeroshot"]["color"]["top1"] <= 1
    table = (out / "compare.md").read_text()
    assert "| demo |" in table and "| demo-nofilter |" in table and "resampled" in table
    assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| recipe | kept |" in capsys.readouterr().out


def test_compare_refuses_bad_input(scored_miniweb, tmp_path, capsys):
    root, _ = scored_miniweb
    argv = [
        "compare",
        "demo",
        "--shards",
        str(root / "shards"),
        "--scores",
        str(root / "scores"),
        "--output",
        str(tmp_path),
    ]
    assert cli.main(argv) == 2 and "at least two recipes" in capsys.readouterr().err
    assert cli.main([*argv[:2], "no-such-recipe", *argv[2:], "--eval-shards", "x.tar"]) == 2
    assert "no recipe 'no-such-recipe'" in capsys.readouterr().err
    assert cli.main([*argv[:2], "laion", *argv[2:]]) == 2
    assert "eval_shards is needed" in capsys.readouterr().err
