"""Raw shards as img2dataset writes them, built in the tests: ``NNNNN.tar`` (webdataset's
TarWriter), the parquet sidecar ``NNNNN.parquet`` (one row per URL tried, with its status) and
``NNNNN_stats.json``; and real photos to put in them."""

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import webdataset as wds
from PIL import Image
from skimage import data as skdata

from vlcurate.pipeline.score.stage import ScoreConfig

PHOTOS = {
    "astronaut": skdata.astronaut(),
    "coffee": skdata.coffee(),
    "chelsea": skdata.chelsea(),
    "rocket": skdata.rocket(),
    "horse": (skdata.horse() * 255).astype(np.uint8),
}


def encoded(image: Image.Image, fmt: str = "JPEG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def jpeg(array) -> bytes:
    return encoded(Image.fromarray(array).convert("RGB"), quality=90)


def write_raw_shard(folder: Path, shard: int, samples: list, failed: int = 1) -> str:
    """One shard of ``(name, image bytes, caption[, json bytes])`` samples (a caption or json
    of bytes is written as it is), plus ``failed`` rows of URLs that did not download, as
    img2dataset records them."""
    stem = folder / f"{shard:05d}"
    rows = []
    with wds.TarWriter(str(stem) + ".tar") as sink:
        for i, (name, data, caption, *raw_json) in enumerate(samples):
            key = f"{shard:05d}{i:04d}"
            meta = {"uid": name, "url": f"http://x/{name}.jpg", "key": key, "status": "success"}
            meta_bytes = raw_json[0] if raw_json else json.dumps(meta).encode()
            sink.write({"__key__": key, "jpg": data, "txt": caption, "json": meta_bytes})
            rows.append({"key": key, "url": meta["url"], "status": "success"})
    for i in range(failed):
        url = f"http://x/missing-{shard}-{i}.jpg"
        rows.append({"key": f"{shard:05d}{len(samples) + i:04d}", "url": url, "status": "failed"})
    pq.write_table(pa.Table.from_pylist(rows), str(stem) + ".parquet")
    counts = {"count": len(rows), "successes": len(samples), "failed_to_download": failed}
    Path(str(stem) + "_stats.json").write_text(json.dumps(counts))
    return str(stem) + ".tar"


def write_shards(folder: Path, samples: list, per_shard: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(samples), per_shard):
        write_raw_shard(folder, start // per_shard, samples[start : start + per_shard])
    return sorted(str(p) for p in folder.glob("*.tar"))


FAST = ScoreConfig(  # tiny-clip and nothing else: for tests of the stage, not the models
    model="tiny-clip",
    pretrained=None,
    device="cpu",
    batch_size=4,
    workers=0,
    faces="none",
    nsfw="none",
    watermark="none",
)


def small_photos(n: int, shard: int = 0, side: int = 96) -> list:
    """``n`` samples of the photos at ``side`` pixels (each photo encoded once)."""
    photos = [
        (name, jpeg(np.asarray(Image.fromarray(a).resize((side, side)))))
        for name, a in PHOTOS.items()
    ]
    return [
        (f"s{shard}-{i}", data, f"a {name}")
        for i, (name, data) in enumerate(photos[i % len(photos)] for i in range(n))
    ]
