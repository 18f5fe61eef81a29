"""The mmc4 road on the mini web: extract -> docs filter -> docs images -> download (127.0.0.1)
-> score (the mini web's CLIP) -> docs assign -> interleaved shards read back by the loader."""

import json

import pyarrow.parquet as pq
import pytest
import torch
import yaml

from jobs import cli
from jobs import extract as extract_job
from pipeline import miniweb
from pipeline.docs.shards import InterleavedDataset
from pipeline.extract import ExtractConfig
from pipeline.miniweb.scenes import brace_pattern
from pipeline.recipe import BUNDLED

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def identities(stats: dict, *tallies: str) -> None:
    assert stats["in"] == stats["kept"] + sum(stats["dropped"].values())
    for name in tallies:
        t = stats[name]
        assert t["in"] == t["kept"] + sum(t["dropped"].values()), name


def test_mmc4_road_on_the_mini_web(spark, miniweb_clip, tmp_path):
    # The mini web's pages reuse a few filler sentences, so OBELICS's repetition and stopword
    # bounds would drop every page: this test relaxes them and keeps mmc4's image rules.
    recipe = yaml.safe_load((BUNDLED / "mmc4.yaml").read_text())
    recipe["docs"].update(max_doc_word_repetition=1.0, max_node_char_repetition=1.0,
                          max_node_word_repetition=1.0, min_node_stopwords=0.0,
                          min_doc_stopwords=0.0, min_node_words=3)  # fmt: skip
    recipe_path = tmp_path / "mmc4-test.yaml"
    recipe_path.write_text(yaml.safe_dump(recipe))
    port = miniweb.free_port()
    manifest = miniweb.build(tmp_path / "web", seed=0, port=port, n_shapes=30)
    extract_job.run([str(tmp_path / "web" / miniweb.WARC_FILE)], str(tmp_path / "extract"),
                    ExtractConfig(), progress=False)  # fmt: skip
    run = lambda *argv: cli.main(list(argv))  # noqa: E731
    assert run("docs", "filter", "-i", str(tmp_path / "extract"), "-r", str(recipe_path),
               "-o", str(tmp_path / "docs"), "--no-progress") == 0  # fmt: skip
    filtered = json.loads((tmp_path / "docs" / "stats.json").read_text())
    identities(filtered, "nodes", "text_nodes", "image_nodes")
    assert filtered["kept"] > 0
    assert run("docs", "images", "-i", str(tmp_path / "docs"),
               "-o", str(tmp_path / "images.parquet")) == 0  # fmt: skip
    images = pq.read_table(tmp_path / "images.parquet")
    assert images.num_rows == filtered["image_nodes"]["kept"]
    with miniweb.serve(tmp_path / "web", port=port, slow_seconds=3):
        assert run("download", "-i", str(tmp_path / "images.parquet"), "-o",
                   str(tmp_path / "shards"), "--allow-private-network", f"127.0.0.1:{port}",
                   "--image-size", "128", "--processes", "1", "--threads", "16",
                   "--timeout", "2") == 0  # fmt: skip
    assert run("score", "-i", str(tmp_path / "shards"), "-o", str(tmp_path / "scores"),
               "--model", "tiny-clip", "--pretrained", "miniweb", "--device", "cpu",
               "--watermark", "none", "--workers", "1", "--no-progress") == 0  # fmt: skip
    assert run("docs", "assign", "--docs", str(tmp_path / "docs"), "--shards",
               str(tmp_path / "shards"), "--scores", str(tmp_path / "scores"), "-r",
               str(recipe_path), "-o", str(tmp_path / "interleaved"),
               "--docs-per-shard", "3") == 0  # fmt: skip
    stats = json.loads((tmp_path / "interleaved" / "stats.json").read_text())
    identities(stats, "images")
    assert stats["in"] == filtered["kept"] and stats["images"]["in"] == images.num_rows
    assert stats["kept"] > 0 and stats["model"] == "tiny-clip"

    truth = {s.image_url: s for s in manifest.samples}
    shards = brace_pattern(sorted(str(p) for p in (tmp_path / "interleaved").glob("*.tar")))
    docs = list(InterleavedDataset(shards, lambda image: torch.zeros(3, 8, 8)))
    assert len(docs) == stats["kept"]
    matched = right = 0
    for doc in docs:
        record = doc["record"]
        assert doc["text"].count("<image>") == len(record["image_info"]) == len(doc["images"])
        assert record["page_url"] and record["doc_id"] and record["warc_record_id"]
        for info in record["image_info"]:
            assert info["matched_sim"] >= 0.15 and 0 <= info["matched_text_index"]
            sample = truth.get(info["raw_url"])
            if sample and sample.kind == "shape":
                matched += 1
                right += sample.caption_true in record["text_list"][info["matched_text_index"]]
    print(f"shape images matched to the sentence that describes them: {right}/{matched}")
    assert matched >= 5 and right / matched >= 0.5
