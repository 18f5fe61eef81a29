"""A small final output, built the way the road builds it: the mini web served on 127.0.0.1,
its good image URLs downloaded (no resizing, so img2dataset's own download of the release gets
the same bytes), scored with tiny-clip (random weights, open_nsfw, zero-shot watermark) and
selected with a keep-all recipe into three final shards."""

import pyarrow as pa
import pytest

from tests.pairs import KEEP_ALL

N_SAMPLES = 14  # mini-web image URLs that answer 200 with an image, each once


def candidates(manifest) -> pa.Table:
    from vlcurate.pipeline.extract.page import pair_uid

    seen, rows = set(), []
    for s in manifest.samples:
        if s.expected_download != "success" or not s.alt or s.image_url in seen:
            continue
        seen.add(s.image_url)
        rows.append(
            {
                "uid": pair_uid(s.alt, s.image_url),
                "url": s.image_url,
                "caption": s.alt,
                "page_url": s.page_url,
                "language": s.language,
            }
        )
    return pa.Table.from_pylist(rows[:N_SAMPLES])


@pytest.fixture(scope="session")
def web(tmp_path_factory):
    """``(root, port, manifest, server)``: the mini web, served for the whole session."""
    from vlcurate import miniweb

    root = tmp_path_factory.mktemp("export-web")
    port = miniweb.free_port()
    manifest = miniweb.build(root / "web", seed=0, port=port, n_shapes=12)
    with miniweb.serve(root / "web", port=port, slow_seconds=4) as server:
        yield root, port, manifest, server


@pytest.fixture(scope="session")
def final(web):
    """``root/final``: the select stage's output over the downloaded, scored mini web."""
    root, port, manifest, _ = web
    return build_final(root, port, manifest)


def build_final(root, port: int, manifest):
    from vlcurate.pipeline.download.safety import SafetyConfig
    from vlcurate.pipeline.download.stage import DownloadConfig, download_stage
    from vlcurate.pipeline.recipe import parse_recipe
    from vlcurate.pipeline.score.stage import ScoreConfig, score_shards
    from vlcurate.pipeline.select.stage import select

    download = DownloadConfig(
        resize_mode="no",
        processes=1,
        threads=4,
        samples_per_shard=8,
        timeout=4,
        host_concurrency=8,  # our own loopback server
        host_delay=0,
    )
    allow = SafetyConfig(allow_networks=[f"127.0.0.1:{port}"])
    download_stage(candidates(manifest), str(root / "shards"), download, allow)
    config = ScoreConfig(
        model="tiny-clip",
        pretrained=None,
        device="cpu",
        batch_size=16,
        workers=0,
        faces="haar",
        watermark="zero-shot",
    )
    tars = sorted(str(p) for p in (root / "shards").glob("*.tar"))
    score_shards(tars, str(root / "scores"), config, progress=False)
    recipe = parse_recipe({**KEEP_ALL, "select": {"samples_per_shard": 5, "dedup": {}}})
    select(
        str(root / "shards"),
        str(root / "scores"),
        recipe,
        str(root / "final"),
        progress=False,
        report=None,
    )
    return root / "final"
