"""The mini web's ground truth: one :class:`Sample` per image reference in the crawl.

``manifest.jsonl`` holds the samples, one JSON object a line, in id order; ``miniweb.json``
holds the build parameters and counts. :meth:`Manifest.load` reads both back.
"""

import json
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

MANIFEST_FILE = "manifest.jsonl"
INFO_FILE = "miniweb.json"
WARC_FILE = "crawl.warc.gz"
SITE_DIR = "site"
VERSION = 1

KINDS = (
    "photo",
    "shape",
    "mismatch",
    "duplicate",
    "near_duplicate",
    "watermark",
    "junk_alt",
    "non_english",
    "hostile",
)
EXPECTED_DOWNLOADS = (
    "success",  # 200, a decodable image
    "http_404",
    "timeout",  # the server sleeps longer than slow_seconds before answering
    "redirect_success",  # 302 to another 127.0.0.1 image, which decodes
    "robots_noai",  # 200, with the header X-Robots-Tag: noai, noimageai
    "not_an_image",  # 200, an HTML page behind an image URL
    "decode_error",  # 200, a truncated JPEG
    "too_large",  # 200, a decompression bomb (header declares 40000 x 40000)
    "private_address",  # private, link-local or loopback-alias host: must never be fetched
)


@dataclass(slots=True)
class Sample:
    """One image reference: where it is, what the page says, and what is really there."""

    id: str
    kind: str
    image_url: str  # absolute, as the extractor resolves it
    alt: str  # raw alt text ("" when empty or absent)
    caption_true: str | None = None  # what the image really shows, when known
    language: str | None = "en"  # of the alt text; None for junk or empty alt text
    expected_download: str = "success"
    page_url: str | None = None
    markup: str | None = None  # how the page refers to it: plain, root_relative, srcset, ...
    faces: int = 0
    watermark: bool = False
    mismatched: bool = False
    duplicate_of: str | None = None  # id of the sample it copies
    duplicate_kind: str | None = None  # exact, resized, reencoded, cropped, watermarked
    shapes: list[dict] | None = None  # [{kind, color, count, boxes}] for drawn scenes
    background: str | None = None
    relation: str | None = None  # above, below, left of, right of (shapes[0] vs shapes[1])
    width: int | None = None  # of the image the URL serves (after a redirect, the target's)
    height: int | None = None
    path: str | None = None  # the served file, relative to site/ (None: nothing served)
    content_type: str | None = None  # the Content-Type the server sends
    sha256: str | None = None  # of the served bytes
    redirect_to: str | None = None  # absolute Location of a redirect
    notes: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_dict(cls, row: dict) -> "Sample":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in row.items() if k in names})


@dataclass
class Manifest:
    """All samples of one build, with the parameters that made them."""

    samples: list[Sample]
    seed: int = 0
    port: int = 0
    n_shapes: int = 0
    pages: list[str] = field(default_factory=list)  # page URLs, in WARC order

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def by_id(self) -> dict[str, Sample]:
        return {s.id: s for s in self.samples}

    def where(self, **conditions) -> list[Sample]:
        """Samples whose attributes equal every condition, e.g. ``where(kind="shape")``."""
        return [s for s in self.samples if all(getattr(s, k) == v for k, v in conditions.items())]

    def counts(self) -> dict[str, dict[str, int]]:
        return {
            "kind": dict(Counter(s.kind for s in self.samples)),
            "expected_download": dict(Counter(s.expected_download for s in self.samples)),
        }

    def info(self) -> dict:
        return {
            "version": VERSION,
            "seed": self.seed,
            "port": self.port,
            "n_shapes": self.n_shapes,
            "base_url": self.base_url,
            "samples": len(self.samples),
            "pages": self.pages,
            "counts": self.counts(),
        }

    def to_jsonl(self, path: str | Path) -> None:
        """Write the samples to ``path`` (a file, or a build folder: its manifest.jsonl) and
        the build parameters to ``miniweb.json`` beside it."""
        path = Path(path)
        if path.is_dir():
            path = path / MANIFEST_FILE
        path.write_text("".join(s.to_json() + "\n" for s in self.samples), encoding="utf-8")
        info = json.dumps(self.info(), indent=2, ensure_ascii=False) + "\n"
        (path.parent / INFO_FILE).write_text(info, encoding="utf-8")

    @classmethod
    def load(cls, out_dir: str | Path) -> "Manifest":
        """Read a build folder's ``manifest.jsonl`` (and ``miniweb.json`` when present)."""
        out_dir = Path(out_dir)
        lines = (out_dir / MANIFEST_FILE).read_text(encoding="utf-8").splitlines()
        samples = [Sample.from_dict(json.loads(line)) for line in lines if line.strip()]
        info_path = out_dir / INFO_FILE
        info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.exists() else {}
        return cls(
            samples,
            seed=info.get("seed", 0),
            port=info.get("port", 0),
            n_shapes=info.get("n_shapes", 0),
            pages=info.get("pages", []),
        )


def load(out_dir: str | Path) -> Manifest:
    """Shorthand for :meth:`Manifest.load`."""
    return Manifest.load(out_dir)
