"""The download stage against a real HTTP server on 127.0.0.1: img2dataset shards, the
accounting identity, the safety pre-filter, and resume."""

import dataclasses
import io
import json
import tarfile

import pyarrow.parquet as pq
import pytest
from PIL import Image

from tests.download.web import candidates
from tests.pairs import pairs_table
from vlcurate.pipeline.download.safety import SafetyConfig
from vlcurate.pipeline.download.stage import DownloadConfig, download_reason, download_stage

LOOPBACK = SafetyConfig(allow_networks=["127.0.0.0/8"])
SMALL = DownloadConfig(image_size=64, processes=1, threads=4, samples_per_shard=4, timeout=3)


def test_download_writes_img2dataset_shards_and_accounts_for_everything(image_server, tmp_path):
    base, colours = image_server
    out = tmp_path / "shards"
    stats = download_stage(candidates(base, colours), str(out), SMALL, LOOPBACK)
    assert stats["in"] == 11 == stats["kept"] + sum(stats["dropped"].values())
    assert stats["kept"] == 6
    # The bomb (40,000 x 40,000 declared) is refused by the decoder's pixel cap, unallocated.
    assert stats["dropped"] == {
        "http_404": 1,
        "decode_error": 1,
        "too_large": 1,
        "private_address": 1,
        "internal_hostname": 1,
    }
    assert json.loads((out / "stats.json").read_text()) == stats
    tars = sorted(out.glob("*.tar"))
    assert len(tars) == stats["shards"] == 3  # 9 safe URLs, 4 per shard
    assert all(
        (out / f"{t.stem}_stats.json").exists() and (out / f"{t.stem}.parquet").exists()
        for t in tars
    )
    sidecar = pq.read_table(out / "00000.parquet")
    assert {
        "key",
        "url",
        "caption",
        "status",
        "error_message",
        "sha256",
        "uid",
        "page_url",
        "warc_path",
        "declared_width",
    } <= set(sidecar.schema.names)
    with tarfile.open(tars[0]) as tar:
        names = tar.getnames()
        sample_json = json.load(tar.extractfile([n for n in names if n.endswith(".json")][0]))
        jpg = tar.extractfile([n for n in names if n.endswith(".jpg")][0]).read()
    assert sample_json["uid"] and sample_json["page_url"] == "https://example.com/page.html"
    assert Image.open(io.BytesIO(jpg)).size == (64, 64)  # border resize to image_size
    unsafe = pq.read_table(out / "_input" / "unsafe.parquet")
    assert unsafe.column("drop_reason").to_pylist() == ["private_address", "internal_hostname"]


def test_rerun_fetches_only_missing_shards(image_server, tmp_path):
    base, colours = image_server
    out = tmp_path / "shards"
    first = download_stage(candidates(base, colours), str(out), SMALL, LOOPBACK)
    # A kill during shard 00001: neither its stats file (img2dataset's own done marker) nor the
    # runner's done marker got written, and its tar is half there.
    (out / "00001_stats.json").unlink()
    (out / "_done" / "00001.json").unlink()
    tar = out / "00001.tar"
    tar.write_bytes(tar.read_bytes()[:700])
    before = (out / "00000.tar").stat().st_mtime_ns
    second = download_stage(candidates(base, colours), str(out), SMALL, LOOPBACK)
    assert (second["kept"], second["dropped"]) == (first["kept"], first["dropped"])
    assert (out / "00000.tar").stat().st_mtime_ns == before  # done shard untouched
    with tarfile.open(out / "00001.tar") as t:  # the redone shard is whole
        keys = [n.rsplit(".", 1)[0] for n in t.getnames() if n.endswith(".jpg")]
    assert len(keys) == len(set(keys)) and len(keys) >= 1


def test_without_allow_list_loopback_is_never_fetched(image_server, tmp_path):
    base, colours = image_server
    stats = download_stage(candidates(base, colours), str(tmp_path / "s"), SMALL, SafetyConfig())
    assert stats["kept"] == 0 and stats["dropped"]["private_address"] == 10


@pytest.mark.parametrize(
    ("status", "error", "reason"),
    [
        ("failed_to_download", "HTTP Error 404: Not Found", "http_404"),
        ("failed_to_download", "<urlopen error timed out>", "timeout"),
        ("failed_to_download", "The read operation timed out", "timeout"),
        (
            "failed_to_download",
            "Use of image disallowed by X-Robots-Tag directive",
            "robots_opt_out",
        ),
        ("failed_to_resize", "Image decoding error", "decode_error"),
        ("failed_to_resize", "image too small", "too_small"),
        ("failed_to_resize", "image area too large", "too_large"),
        ("failed_to_resize", "something new", "resize_error"),
        (
            "failed_to_resize",
            "error: (-215:Assertion failed) pixels <= CV_IO_MAX_IMAGE_PIXELS",
            "too_large",
        ),
        (
            "failed_to_download",
            "<urlopen error [Errno 111] Connection refused>",
            "connection_refused",
        ),
    ],
)
def test_img2dataset_errors_map_to_reasons(status, error, reason):
    assert download_reason(status, error) == reason


def test_shards_read_back_with_webdataset_and_a_torch_dataloader(image_server, tmp_path):
    import torch
    import webdataset as wds

    base, colours = image_server
    out = tmp_path / "shards"
    download_stage(candidates(base, colours), str(out), SMALL, LOOPBACK)
    urls = [str(p) for p in sorted(out.glob("*.tar"))]
    dataset = (
        wds.WebDataset(urls, shardshuffle=False)
        .decode("torchrgb")
        .to_tuple("jpg", "txt", "json")
        .map_tuple(lambda image: image, lambda text: text, lambda meta: meta["uid"])
    )
    loader = torch.utils.data.DataLoader(dataset, batch_size=3, num_workers=2)
    images, captions, uids = [], [], []
    for batch_images, batch_captions, batch_uids in loader:
        images.append(batch_images)
        captions += batch_captions
        uids += batch_uids
    assert torch.cat(images).shape == (6, 3, 64, 64)
    assert sorted(captions) == sorted(f"a {c} rectangle" for c in colours)
    assert len(set(uids)) == 6


@pytest.mark.spark
def test_pyspark_distributor_uses_the_active_session(spark, image_server, tmp_path):
    base, colours = image_server
    config = DownloadConfig(**{**SMALL.__dict__, "distributor": "pyspark"})
    stats = download_stage(candidates(base, colours), str(tmp_path / "s"), config, LOOPBACK)
    assert (stats["in"], stats["kept"], stats["shards"]) == (11, 6, 3)


def test_resize_settings_come_from_the_recipe_and_flags_win():
    from vlcurate.jobs.download import build_parser
    from vlcurate.jobs.options import config_from_layers
    from vlcurate.pipeline.download.candidates import recipe_download_settings

    laion = pairs_table("a cat", recipe=["laion/1"])
    settings = recipe_download_settings(None, laion)  # the candidates name their recipe
    assert settings == {
        **dataclasses.asdict(DownloadConfig()),
        "image_size": 384,
        "resize_mode": "keep_ratio",
        "resize_only_if_bigger": True,
    }
    args = build_parser().parse_args(["-i", "x", "-o", "y", "--image-size", "128"])
    config = config_from_layers(DownloadConfig, settings, args=args)
    assert (config.image_size, config.resize_mode, config.samples_per_shard) == (
        128,
        "keep_ratio",
        10000,
    )
    assert recipe_download_settings("cc3m", laion)["min_image_size"] == 400
    assert recipe_download_settings(None, pairs_table("a cat", recipe=["mine/2"])) == {}
