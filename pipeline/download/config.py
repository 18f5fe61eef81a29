"""The download stage's settings: img2dataset's fetching, resizing and encoding options, each
with its type and range (checked when constructed, see :mod:`vlcurate.pipeline.config`)."""

import math
from dataclasses import dataclass, field

from vlcurate.pipeline.config import Config

RESIZE_MODES = ("no", "border", "keep_ratio", "keep_ratio_largest", "center_crop")
DISTRIBUTORS = ("multiprocessing", "pyspark")
# How fast and how patiently images are fetched, not what a shard holds: left out of the
# settings digest, so a killed run may resume with more threads or another timeout.
SPEED_FIELDS = (
    "processes",
    "threads",
    "timeout",
    "retries",
    "distributor",
    "user_agent_token",
    "host_concurrency",
    "host_delay",
    "max_crawl_delay",
    "retry_after_cap",
    "resolve",
)


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
    threads: int = field(default=0, metadata={"help": "threads per process; 0: 64", "min": 0})
    samples_per_shard: int = field(
        default=10000, metadata={"help": "images per output shard", "min": 1}
    )
    timeout: float = field(
        default=10.0,
        metadata={
            "help": "seconds for a whole request: DNS, connect, TLS, headers, body, redirects",
            "above": 0,
        },
    )
    retries: int = field(
        default=2, metadata={"help": "retries of a request answered 429 or 503", "min": 0}
    )
    max_image_bytes: int = field(
        default=20_000_000,
        metadata={"help": "larger bodies are refused or cut (too_large_body)", "min": 1},
    )
    max_redirects: int = field(
        default=5, metadata={"help": "redirects followed, each hop checked", "min": 0}
    )
    host_concurrency: int = field(
        default=2, metadata={"help": "requests in flight per host, per machine", "min": 1}
    )
    host_delay: float = field(
        default=0.2, metadata={"help": "least seconds between requests to a host", "min": 0}
    )
    max_crawl_delay: float = field(
        default=10.0,
        metadata={"help": "robots.txt Crawl-delay is honoured up to this many seconds", "min": 0},
    )
    retry_after_cap: float = field(
        default=60.0, metadata={"help": "longest wait for a 429/503 Retry-After", "min": 0}
    )
    robots: bool = field(
        default=True,
        metadata={"help": "read robots.txt before a host's first request and obey it"},
    )
    blocklist: list[str] = field(
        default_factory=list,
        metadata={
            "help": "a file of hex MD5/SHA-1/SHA-256 digests of image URLs or image bytes, "
            "one a line (dropped as blocklisted; repeatable)",
            "repeatable": True,
            "metavar": "FILE",
        },
    )
    opt_out: list[str] = field(
        default_factory=list,
        metadata={
            "help": "a file of opted-out domains and URL prefixes, one a line (dropped as "
            "opted_out; repeatable)",
            "repeatable": True,
            "metavar": "FILE",
        },
    )
    resolve: list[str] = field(
        default_factory=list,
        metadata={
            "help": "HOST:ADDRESS pins, as curl's --resolve (the address is still checked; "
            "repeatable)",
            "repeatable": True,
            "metavar": "HOST:ADDRESS",
        },
    )
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
            "help": "multiprocessing (processes on this machine), or pyspark (a Spark task "
            "per shard)",
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
