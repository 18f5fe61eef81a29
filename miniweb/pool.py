"""A noisy pool of mini-web samples, as img2dataset would have downloaded it from a crawl: the
pool that ``curate compare`` tells curation recipes apart on (issue 20's comparison).

The demo's 260 samples are too few to train on; this writes ``n`` samples straight into
img2dataset's shard layout (``NNNNN.tar`` of jpg/txt/json, the ``NNNNN.parquet`` sidecar and
``NNNNN_stats.json``), so ``curate score`` and ``curate select`` read it as a downloaded pool.
Every sample's json and parquet row carries its truth: ``noise`` (what is wrong with it),
``kind`` and ``color`` (the first shape group of the scene the image shows, or null).

What is in it, by ``noise`` (shares of ``n``, :data:`MIX`):

- ``clean``: a scene and its exact caption;
- ``mismatched`` (a third): a scene with the caption of another scene;
- ``duplicate`` / ``near_duplicate``: a copy of an earlier clean sample under another URL,
  exact, or resized, re-encoded or cropped by 6% (the caption kept, as re-hosted images are);
- ``watermarked``: a clean scene with a stock-photo overlay;
- ``junk_alt``: a scene whose alt text says nothing (``IMG_2031.JPG``, ``click here``);
- ``junk_image``: not a scene at all (a banner, a button, noise) with web-junk alt text.

The concepts are skewed as a crawl's are: every shape group's (kind, colour) is drawn from a
Zipf law over the 32 combinations (exponent :data:`ZIPF`, in an order the seed shuffles), so
one combination is common and most are rare, while held-out scenes (``curate miniweb
--scenes``) are uniform. That is the skew MetaCLIP's balancing is meant to flatten.

:func:`write_pool` also writes the pool's concept vocabulary as ``metadata.json`` (MetaCLIP's
format, a JSON list of entries: every colour-kind phrase, singular and plural), the metadata a
balancing of this pool is built on.
"""

import hashlib
import random

from PIL import Image, ImageDraw, ImageFont

from vlcurate.miniweb import images, shapes, text
from vlcurate.miniweb.scenes import write_shards
from vlcurate.pipeline.extract.page import pair_uid

MIX = {  # noise -> share of the pool; clean takes the rest
    "mismatched": 1 / 3,
    "duplicate": 0.05,
    "near_duplicate": 0.05,
    "watermarked": 0.05,
    "junk_alt": 0.04,
    "junk_image": 0.04,
}
NOISES = ("clean", *MIX)
ZIPF = 1.1
CONCEPTS = [(kind, color) for color in shapes.SHAPE_COLORS for kind in shapes.KINDS]
JUNK_IMAGE_ALTS = ("logo", "banner", "buy now", "subscribe", "advertisement", "spacer", "icon")
_NEAR = (
    lambda data: images.resized(data, 0.6),
    lambda data: images.reencoded(data, 35),
    lambda data: images.cropped(data, 0.06),
)


def concept_weights(rng: random.Random) -> list[float]:
    """Zipf weights over :data:`CONCEPTS`, in an order shuffled by ``rng``."""
    order = list(range(len(CONCEPTS)))
    rng.shuffle(order)
    weights = [0.0] * len(CONCEPTS)
    for rank, i in enumerate(order, start=1):
        weights[i] = rank**-ZIPF
    return weights


def skewed_scene(rng: random.Random, weights: list[float], min_side: int) -> shapes.Scene:
    """A random scene whose groups' (kind, colour) follow ``weights`` (distinct groups)."""
    size = (rng.randint(min_side, 2 * min_side), rng.randint(min_side, 2 * min_side))
    scene = shapes.random_scene(rng, size=size)
    drawn: list[tuple[str, str]] = []
    while len(drawn) < len(scene.groups):
        concept = rng.choices(CONCEPTS, weights)[0]
        if concept not in drawn:
            drawn.append(concept)
    for group, (kind, color) in zip(scene.groups, drawn, strict=True):
        group.kind, group.color = kind, color
    used = {group.color for group in scene.groups}
    if scene.background in used:
        scene.background = rng.choice([b for b in shapes.BACKGROUNDS if b not in used])
    return scene


def junk_image(rng: random.Random, min_side: int) -> Image.Image:
    """A picture a crawl is full of and that no caption describes: a banner, a button, noise."""
    width, height = rng.randint(min_side, 3 * min_side), rng.randint(min_side // 2, min_side)
    style = rng.choice(("banner", "button", "noise"))
    if style == "noise":
        return Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    top, bottom = (tuple(rng.randrange(256) for _ in range(3)) for _ in range(2))
    image = Image.new("RGB", (width, height))
    pen = ImageDraw.Draw(image)
    for y in range(height):
        mix = y / max(1, height - 1) if style == "banner" else 0.0
        fill = tuple(round(a + (b - a) * mix) for a, b in zip(top, bottom, strict=True))
        pen.line([(0, y), (width, y)], fill=fill)
    font = ImageFont.load_default(size=max(12, height // 3))
    pen.text((width // 10, height // 3), rng.choice(("SALE", "Buy now", "-50%", "NEW")), font=font)
    return image


def concept_entries() -> list[str]:
    """The pool's concepts as MetaCLIP metadata entries: ``red circle``, ``red circles``, ..."""
    return [f"{c} {k}{s}" for s in ("", "s") for k, c in CONCEPTS]


def _plan(rng: random.Random, n: int) -> list[str]:
    counts = {noise: round(share * n) for noise, share in MIX.items()}
    plan = [noise for noise, count in counts.items() for _ in range(count)]
    plan += ["clean"] * (n - len(plan))
    rng.shuffle(plan)
    # copies need a clean sample before them: move the first copies after the first clean one
    first_clean = plan.index("clean")
    early = [i for i in range(first_clean) if plan[i] in ("duplicate", "near_duplicate")]
    for i in early:
        plan[i], plan[first_clean] = plan[first_clean], plan[i]
        first_clean = i
    return plan


def pool_samples(n: int, seed: int = 0, min_side: int = 96):
    """Yield ``n`` samples ``(jpeg, caption, fields)`` of the noisy pool; same arguments, same
    bytes."""
    rng = random.Random(seed)
    weights = concept_weights(rng)
    clean: list[tuple[bytes, str, str, str]] = []
    for i, noise in enumerate(_plan(rng, n)):
        kind = color = None
        if noise in ("duplicate", "near_duplicate"):
            data, caption, kind, color = rng.choice(clean)
            if noise == "near_duplicate":
                data = rng.choice(_NEAR)(data)
        elif noise == "junk_image":
            data = images.encode(junk_image(rng, min_side), "jpeg")
            caption = rng.choice(JUNK_IMAGE_ALTS)
        else:
            scene = skewed_scene(rng, weights, min_side)
            kind, color = scene.groups[0].kind, scene.groups[0].color
            caption = shapes.caption(scene)
            picture = shapes.draw(scene)
            if noise == "watermarked":
                data = images.watermarked(picture, rng.choice(("shutterstock", "iStock")))
            else:
                data = images.encode(picture, "jpeg")
            if noise == "mismatched":
                caption = shapes.caption(skewed_scene(rng, weights, min_side))
            elif noise == "junk_alt":
                caption = rng.choice([a for a in text.JUNK_ALTS if a])
            elif noise == "clean":
                clean.append((data, caption, kind, color))
        url = f"http://pool.example/{seed}/{i:06d}.jpg"
        yield data, caption, sample_fields(data, caption, url, noise, kind, color)


def sample_fields(data: bytes, caption: str, url: str, noise: str, kind, color) -> dict:
    """img2dataset's json fields for one successful download, with the sample's truth."""
    width, height = images.size_of(data)
    return {
        "url": url,
        "caption": caption,
        "uid": pair_uid(caption, url),  # cc2dataset's, as extraction gives it
        "status": "success",
        "error_message": None,
        "width": width,
        "height": height,
        "original_width": width,
        "original_height": height,
        "sha256": hashlib.sha256(data).hexdigest(),
        "noise": noise,
        "kind": kind,
        "color": color,
    }


def write_pool(folder, n: int, seed: int = 0, per_shard: int = 1000) -> list[str]:
    """Write the pool as img2dataset shards under ``folder``; return the tar paths."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from vlcurate.pipeline.storage import atomic_open, join, write_text_atomic

    rows: list[dict] = []

    def keep_rows(samples):
        for data, caption, meta in samples:
            rows.append(meta)
            yield data, caption, meta

    tars = write_shards(folder, keep_rows(pool_samples(n, seed)), n, per_shard)
    for shard, tar in enumerate(tars):
        mine = rows[shard * per_shard : (shard + 1) * per_shard]
        stem = tar.removesuffix(".tar")
        with atomic_open(f"{stem}.parquet", "wb") as f:
            pq.write_table(pa.Table.from_pylist(mine), f)
        stats = {"count": len(mine), "successes": len(mine), "failed_to_download": 0}
        write_text_atomic(join(str(folder), f"{shard:05d}_stats.json"), json.dumps(stats))
    write_text_atomic(join(str(folder), "metadata.json"), json.dumps(concept_entries()))
    return tars
