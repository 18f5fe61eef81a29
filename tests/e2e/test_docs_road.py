"""`curate run mmc4` on the mini web: extract -> docs filter + docs images -> download
(127.0.0.1) -> score (the mini web's CLIP) -> docs assign -> interleaved shards, read back by
the loader, and report.html."""

import json

import pyarrow.parquet as pq
import pytest
import torch

from vlcurate import miniweb
from vlcurate.jobs import cli
from vlcurate.pipeline.docs.shards import InterleavedDataset
from vlcurate.pipeline.storage import brace_pattern

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def identities(stats: dict, *tallies: str) -> None:
    assert stats["in"] == stats["kept"] + sum(stats["dropped"].values())
    for name in tallies:
        t = stats[name]
        assert t["in"] == t["kept"] + sum(t["dropped"].values()), name


def test_mmc4_road_on_the_mini_web(spark, miniweb_clip, tmp_path):
    port = miniweb.free_port()
    manifest = miniweb.build(tmp_path / "web", seed=0, port=port, n_shapes=30)
    out = tmp_path / "out"
    with miniweb.serve(tmp_path / "web", port=port, slow_seconds=3):
        crawl = str(tmp_path / "web" / miniweb.WARC_FILE)
        code = cli.main(
            [
                "run",
                "mmc4",
                "--input",
                crawl,
                "--output",
                str(out),
                "--master",
                "local[2]",
                "--no-progress",
                "--allow-private-network",
                f"127.0.0.1:{port}",
                "--download-args",
                "--image-size 128 --processes 1 --threads 16 --timeout 2"
                " --host-concurrency 16 --host-delay 0",
                "--score-args",
                "--model tiny-clip --pretrained miniweb --device cpu --watermark none --workers 1",
            ]
        )
    assert code == 0
    filtered = json.loads((out / "docs" / "stats.json").read_text())
    identities(filtered, "nodes", "text_nodes", "image_nodes")
    print(
        f"docs filter (the published thresholds): {filtered['kept']}/{filtered['in']} pages "
        f"kept; dropped {filtered['dropped']}; text nodes dropped "
        f"{filtered['text_nodes']['dropped']}"
    )
    # The mini web's prose passes OBELICS's text rules as published: every English page is
    # kept; the French, German and Spanish pages have no English stopwords, so none of their
    # text nodes is left.
    assert filtered["kept"] > 0 and filtered["kept"] == filtered["in"] - 3
    assert filtered["dropped"] == {"no_text": 3}
    images = pq.read_table(out / "docs" / "images.parquet")
    assert images.num_rows == filtered["image_nodes"]["kept"]
    stats = json.loads((out / "interleaved" / "stats.json").read_text())
    identities(stats, "images")
    assert stats["in"] == filtered["kept"] and stats["images"]["in"] == images.num_rows
    assert stats["kept"] > 0 and stats["model"] == "tiny-clip"
    html = (out / "report.html").read_text()
    assert "docs filter" in html and "not_downloaded" in html
    assert "clip_tiny_clip_sim" in html and "data:image/jpeg;base64" in html

    truth = {s.image_url: s for s in manifest.samples}
    shards = brace_pattern(sorted(str(p) for p in (out / "interleaved").glob("*.tar")))
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
