"""The download stage's settings: img2dataset's fetching, resizing and encoding options, each
with its type and range (checked when constructed, see :mod:`vlcurate.pipeline.config`)."""

import math
from dataclasses import dataclass, field

from vlcurate.pipeline.config import Config

RESIZE_MODES = ("no", "border", "keep_ratio", "keep_ratio_largest", "center_crop")
DISTRIBUTORS = ("multiprocessing", "pyspark")
# How fast and how patiently images are fetched, not what a shard holds: left out of the
# settings digest, so a killed run may resume with more threads or another timeout.
SPEED_FIELDS = ("processes", "threads", "timeout", "retries", "distributor", "user_agent_token")


@dataclass
class DownloadConfig(Config):
    section = "download"

    image_size: int = field(default=256, metadata={"help": "target side in pixels", "min": 1})
    resize_mode: str = field(
        default="border",
        metadata={
            "help": f"img2dataset resize mode: {', '.join(RESIZE_MODES)}",
            "choices": RESIZE_MODES,
        },
    )
    resize_only_if_bigger: bool = field(
        default=False, metadata={"help": "leave images smaller than image_size as they are"}
    )
    processes: int = field(
        default=0, metadata={"help": "download processes; 0: one per core", "min": 0}
    )
    threads: int = field(
        default=0, metadata={"help": "threads per process; 0: 64 per core", "min": 0}
    )
    samples_per_shard: int = field(
        default=10000, metadata={"help": "images per output shard", "min": 1}
    )
    timeout: int = field(
        default=10, metadata={"help": "seconds before a request times out", "min": 1}
    )
    retries: int = field(default=0, metadata={"help": "retries of a failed request", "min": 0})
    encode_quality: int = field(
        default=95, metadata={"help": "JPEG quality of the shards", "min": 1, "max": 100}
    )
    min_image_size: int = field(
        default=0, metadata={"help": "smaller images are too_small", "min": 0}
    )
    max_image_area: int = field(
        default=89_478_485,
        metadata={
            "help": "larger images (pixels) are dropped; also caps OpenCV's decoder, so a "
            "decompression bomb is refused before it is decoded (Pillow's default limit)",
            "min": 1,
        },
    )
    max_aspect_ratio: float = field(
        default=math.inf, metadata={"help": "wider images dropped", "min": 1}
    )
    distributor: str = field(
        default="multiprocessing",
        metadata={
            "help": "multiprocessing, or pyspark (the active session)",
            "choices": DISTRIBUTORS,
        },
    )
    robots_directives: list[str] = field(
        default_factory=lambda: ["noai", "noimageai", "noindex", "noimageindex"],
        metadata={"help": "X-Robots-Tag directives that opt an image out (img2dataset's)"},
    )
    user_agent_token: str = field(default="vlcurate", metadata={"help": "added to the User-Agent"})

    def as_json(self) -> dict:
        """The settings as JSON can hold them (an infinite aspect ratio as text)."""
        fields = dict(self.__dict__)
        fields["max_aspect_ratio"] = str(self.max_aspect_ratio)
        return fields
