"""The recipe's ``select:`` section: thresholds, face policy, near-duplicate removal, sharding.

    select:
      clip_min: 0.28             # or clip_top_fraction: 0.3 (DataComp's "top 30%")
      clip_model: ViT-B-32       # the model the threshold is calibrated for
      nsfw_max: 0.5
      watermark_max: 0.8
      min_side: 200
      max_aspect_ratio: 3.0
      languages: [en]
      faces: keep                # keep, drop or blur
      dedup: {exact: true, phash_max_distance: 2, semantic_min_cosine: 0.95}
      samples_per_shard: 10000

Every bound is inclusive on the kept side: a sample with ``clip >= clip_min``,
``nsfw_p <= nsfw_max``, ``watermark_p <= watermark_max``, a shorter side ``>= min_side`` and an
aspect ratio ``<= max_aspect_ratio`` is kept. A rule left out (null) is not applied.
"""

from dataclasses import dataclass, field

FACE_POLICIES = ("keep", "drop", "blur")
INDEXES = ("auto", "flat", "ivf")


@dataclass
class ImageDedup:
    exact: bool = True  # same sha256 of the downloaded bytes
    phash_max_distance: int | None = None  # pHash Hamming distance; null: off
    # pHash sees gray levels only (a blue triangle on green and on gray share a hash): a pHash
    # pair is a duplicate only when their CLIP image embeddings also agree this much
    phash_min_cosine: float | None = 0.9
    semantic_min_cosine: float | None = None  # CLIP image embedding cosine; null: off
    neighbors: int = 32  # nearest neighbours looked at per sample
    index: str = "auto"  # flat (exact), ivf (approximate) or auto: flat below flat_below
    flat_below: int = 200_000
    nprobe: int = 16  # IVF lists searched per query

    def __post_init__(self):
        if self.index not in INDEXES:
            raise ValueError(f"index must be one of {INDEXES}, got {self.index!r}")
        if self.neighbors < 1:
            raise ValueError("neighbors must be at least 1")


@dataclass
class SelectConfig:
    clip_min: float | None = None
    clip_top_fraction: float | None = None
    clip_model: str | None = None  # scores from another model are refused: thresholds differ
    nsfw_max: float | None = None
    watermark_max: float | None = None
    min_side: int | None = None  # of the original image (img2dataset's original_width/height)
    max_aspect_ratio: float | None = None  # long side / short side, of the original image
    languages: list[str] | None = None
    faces: str = "keep"
    dedup: ImageDedup = field(default_factory=ImageDedup)
    samples_per_shard: int = 10_000

    def __post_init__(self):
        if isinstance(self.dedup, dict):
            self.dedup = ImageDedup(**self.dedup)
        if self.faces not in FACE_POLICIES:
            raise ValueError(f"faces must be one of {FACE_POLICIES}, got {self.faces!r}")
        if self.clip_min is not None and self.clip_top_fraction is not None:
            raise ValueError("give clip_min or clip_top_fraction, not both")
        if self.clip_top_fraction is not None and not 0 < self.clip_top_fraction <= 1:
            raise ValueError("clip_top_fraction must be in (0, 1]")
        if self.samples_per_shard < 1:
            raise ValueError("samples_per_shard must be at least 1")
