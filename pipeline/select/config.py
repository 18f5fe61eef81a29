"""The recipe's ``select:`` section: thresholds, face policy, near-duplicate removal, sharding.

    select:
      clip_min: 0.28             # or clip_top_fraction: 0.3 (DataComp's "top 30%")
      clip_model: ViT-B-32       # the model the threshold is calibrated for
      nsfw_max: 0.5
      watermark_max: 0.8
      min_side: 200
      max_aspect_ratio: 3.0
      languages: [en]           # or nolang, or [multilingual]: LAION-5B's three subsets
      faces: keep                # keep, drop or blur
      dedup: {exact: true, phash_max_distance: 2, semantic_min_cosine: 0.95}
      image_filter: {reference: [imagenet/img_emb], centroids: 100000, seed: 0}
      decontaminate: [evals/coco-val/, evals/flickr30k.npy]   # or {eval: [...], thresholds}
      samples_per_shard: 10000

Every bound is inclusive on the kept side: a sample with ``clip >= clip_min``,
``nsfw_p <= nsfw_max``, ``watermark_p <= watermark_max``, a shorter side ``>= min_side`` and an
aspect ratio ``<= max_aspect_ratio`` is kept. A rule left out (null) is not applied. Every
field is checked when the section is loaded (:class:`vlcurate.pipeline.config.Config`): a value
out of its range fails with one line naming it, before any work.
"""

from dataclasses import dataclass, field, fields
from typing import ClassVar

from vlcurate.pipeline.config import Config, ConfigError
from vlcurate.pipeline.filters.metaclip import MetaclipBalance

FACE_POLICIES = ("keep", "drop", "blur")
INDEXES = ("auto", "flat", "ivf")
COSINE = {"min": -1, "max": 1}


@dataclass
class ImageDedup(Config):
    section: ClassVar[str] = "select.dedup"

    exact: bool = field(default=True, metadata={"help": "same sha256 of the downloaded bytes"})
    phash_max_distance: int | None = field(
        default=None, metadata={"help": "pHash Hamming distance; null: off", "min": 0, "max": 64}
    )
    # pHash sees gray levels only (a blue triangle on green and on gray share a hash): a pHash
    # pair is a duplicate only when their CLIP image embeddings also agree this much
    phash_min_cosine: float | None = field(
        default=0.9, metadata={"help": "CLIP image cosine a pHash pair needs too", **COSINE}
    )
    semantic_min_cosine: float | None = field(
        default=None, metadata={"help": "CLIP image embedding cosine; null: off", **COSINE}
    )
    neighbors: int = field(
        default=32, metadata={"help": "nearest neighbours looked at per sample", "min": 1}
    )
    index: str = field(
        default="auto",
        metadata={
            "help": "flat (exact), ivf (approximate), auto: flat below flat_below",
            "choices": INDEXES,
        },
    )
    flat_below: int = field(
        default=200_000, metadata={"help": "samples under which auto is flat", "min": 1}
    )
    nprobe: int = field(default=16, metadata={"help": "IVF lists searched per query", "min": 1})


def _paths(value):
    """``path`` is ``[path]``."""
    return [value] if isinstance(value, str) else value


def _nested(cls, value, name: str):
    """A mapping of the recipe as ``cls``, its unknown keys named."""
    if not isinstance(value, dict):
        return value
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ConfigError(f"select.{name}: unknown key {unknown[0]!r} (known: {sorted(known)})")
    return cls(**value)


@dataclass
class ImageFilter(Config):
    """DataComp's image-based filter: k-means over the pool's CLIP image embeddings; a sample is
    kept when its nearest centre is the nearest centre of some reference image (DataComp:
    100,000 centres, ImageNet-1k's training images, ViT-L/14)."""

    section: ClassVar[str] = "select.image_filter"

    reference: list[str] = field(
        default_factory=list,
        metadata={"help": "the reference images: WebDataset shards or CLIP embeddings (.npy)"},
    )
    centroids: int = field(
        default=100_000, metadata={"help": "k-means centres (capped for small pools)", "min": 1}
    )
    points_per_centroid: int = field(
        default=39,
        metadata={
            "help": "centres are capped at pool size / this (faiss wants 39 points a centre)",
            "min": 1,
        },
    )
    seed: int = field(default=0, metadata={"help": "k-means seed: reruns give the same", "min": 0})

    def __post_init__(self):
        self.reference = _paths(self.reference)
        super().__post_init__()
        if not self.reference:
            raise ConfigError("select.image_filter.reference: give one path or more")


@dataclass
class Decontaminate(Config):
    """Drop pool samples whose image is a near-duplicate of an eval image, decided as the dedup
    decides: pHash within ``phash_max_distance`` with CLIP image cosine ``>= phash_min_cosine``,
    or cosine ``>= semantic_min_cosine`` (the only road for eval sets given as embeddings)."""

    section: ClassVar[str] = "select.decontaminate"

    eval: list[str] = field(
        default_factory=list,
        metadata={"help": "the eval images: WebDataset shards or CLIP embeddings (.npy)"},
    )
    phash_max_distance: int | None = field(
        default=16, metadata={"help": "pHash Hamming distance; null: off", "min": 0, "max": 64}
    )
    phash_min_cosine: float | None = field(
        default=0.9, metadata={"help": "CLIP image cosine a pHash pair needs too", **COSINE}
    )
    semantic_min_cosine: float | None = field(
        default=0.95, metadata={"help": "CLIP image cosine alone; null: off", **COSINE}
    )

    def __post_init__(self):
        self.eval = _paths(self.eval)
        super().__post_init__()
        if not self.eval:
            raise ConfigError("select.decontaminate.eval: give one path or more")
        if self.phash_max_distance is None and self.semantic_min_cosine is None:
            raise ConfigError(
                "select.decontaminate: phash_max_distance and semantic_min_cosine are both null"
            )


@dataclass
class SelectConfig(Config):
    section: ClassVar[str] = "select"

    clip_min: float | None = field(
        default=None, metadata={"help": "lowest CLIP similarity kept", "min": -1, "max": 1}
    )
    clip_top_fraction: float | None = field(
        default=None,
        metadata={"help": "keep this top share by CLIP similarity, in (0, 1]", "max": 1},
    )
    clip_model: str | None = field(
        default=None,
        metadata={"help": "the model the thresholds are for; scores of another are refused"},
    )
    nsfw_max: float | None = field(
        default=None, metadata={"help": "highest nsfw_p kept", "min": 0, "max": 1}
    )
    watermark_max: float | None = field(
        default=None, metadata={"help": "highest watermark_p kept", "min": 0, "max": 1}
    )
    min_side: int | None = field(
        default=None, metadata={"help": "shortest side of the original image, px", "min": 1}
    )
    max_aspect_ratio: float | None = field(
        default=None, metadata={"help": "long side / short side of the original image", "min": 1}
    )
    languages: list[str] | None = field(
        default=None,
        metadata={
            "help": "caption languages kept: ISO 639 codes, nolang (no confident language), "
            "multilingual (any identified language but en); null: any"
        },
    )
    faces: str = field(
        default="keep",
        metadata={"help": "images with faces: keep, drop or blur", "choices": FACE_POLICIES},
    )
    dedup: ImageDedup = field(default_factory=ImageDedup)
    balance: MetaclipBalance | None = field(
        default=None,
        metadata={"help": "MetaCLIP balancing, last: {metadata, t or tail_fraction, seed}"},
    )
    image_filter: ImageFilter | None = field(
        default=None,
        metadata={"help": "DataComp's image-based filter: {reference, centroids, seed}"},
    )
    decontaminate: Decontaminate | None = field(
        default=None,
        metadata={"help": "eval sets whose near-duplicates are dropped: [paths] or {eval, ...}"},
    )
    samples_per_shard: int = field(
        default=10_000, metadata={"help": "samples per final shard", "min": 1}
    )

    def __post_init__(self):
        self.image_filter = _nested(ImageFilter, self.image_filter, "image_filter")
        if isinstance(self.decontaminate, str | list):
            self.decontaminate = {"eval": self.decontaminate}
        self.decontaminate = _nested(Decontaminate, self.decontaminate, "decontaminate")
        if isinstance(self.dedup, dict):
            self.dedup = ImageDedup(**self.dedup)
        if isinstance(self.balance, dict):
            self.balance = MetaclipBalance(**self.balance)
        if isinstance(self.languages, str):
            self.languages = [self.languages]  # `languages: nolang` is `languages: [nolang]`
        super().__post_init__()
        if self.clip_top_fraction is not None and self.clip_top_fraction <= 0:
            raise ConfigError(
                f"select.clip_top_fraction: {self.clip_top_fraction!r} is not allowed "
                "(a number > 0 and <= 1, or null)"
            )
        if self.clip_min is not None and self.clip_top_fraction is not None:
            raise ConfigError("select: give clip_min or clip_top_fraction, not both")
