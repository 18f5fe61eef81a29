"""The score stage's settings, checked when they are made (a recipe's ``score:`` section, the
flags of ``curate score``): each field's type and range, and the scorer names."""

from dataclasses import dataclass, field
from typing import ClassVar

from vlcurate.pipeline.config import Config, ConfigError

OPEN_NSFW = "open-nsfw"
OCR = "ocr"
ZERO_SHOT = "zero-shot"
HEAD = "head:"  # head:FILE, a trained head on the CLIP image embedding
NSFW_SCORERS = (OPEN_NSFW, ZERO_SHOT, "none")
WATERMARK_SCORERS = (OCR, ZERO_SHOT, "none")
MTCNN_TORCH = "mtcnn-torch"  # batched on the scoring device (pipeline/score/mtcnn_torch.py)
FACE_DETECTORS = ("auto", "haar", "mtcnn", MTCNN_TORCH, "none")


@dataclass
class ScoreConfig(Config):
    section: ClassVar[str] = "score"

    model: str = field(default="ViT-B-32", metadata={"help": "open_clip model name or config JSON"})
    pretrained: str | None = field(
        default="laion2b_s34b_b79k", metadata={"help": "open_clip tag, local weights file, or none"}
    )
    device: str = field(
        default="auto", metadata={"help": "cuda, cuda:N, cpu, or auto (cuda if present)"}
    )
    batch_size: int = field(default=256, metadata={"help": "images per CLIP batch", "min": 1})
    workers: int = field(
        default=2, metadata={"help": "DataLoader decode processes per device", "min": 0}
    )
    processes: int = field(
        default=0,
        metadata={
            "help": "scoring processes, each with its own device and shards; 0: one per GPU",
            "min": 0,
        },
    )
    faces: str = field(
        default="auto",
        metadata={
            "help": "face detector: auto (mtcnn-torch on a GPU, else haar), haar, mtcnn "
            "(per image, OpenCV DNN), mtcnn-torch (batched on the device) or none",
            "choices": FACE_DETECTORS,
        },
    )
    nsfw: str = field(
        default=OPEN_NSFW,
        metadata={"help": "open-nsfw (packaged ONNX), head:FILE (CLIP head), zero-shot or none"},
    )
    watermark: str = field(
        default=OCR,
        metadata={"help": "ocr (stock marks, packaged OCR), head:FILE, zero-shot or none"},
    )
    watermark_min_clip: float | None = field(
        default=None,
        metadata={
            "help": "run OCR only on images with CLIP similarity >= this (OCR is slow)",
            "min": -1,
            "max": 1,
        },
    )
    phash: bool = field(default=True, metadata={"help": "compute the perceptual hash"})

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_scorer("nsfw", self.nsfw, NSFW_SCORERS)
        _check_scorer("watermark", self.watermark, WATERMARK_SCORERS)


def _check_scorer(name: str, value: str, fixed: tuple[str, ...]) -> None:
    if value in fixed or (value.startswith(HEAD) and len(value) > len(HEAD)):
        return
    allowed = ", ".join(fixed)
    raise ConfigError(f"score.{name}: {value!r} is not allowed (one of {allowed}, or head:FILE)")


def face_detector_of(config: ScoreConfig) -> str:
    """The detector ``faces`` names: ``auto`` is the batched MTCNN when the run scores on a GPU
    (``--device`` cuda, or auto with one here), else Haar, the CPU fallback."""
    if config.faces != "auto":
        return config.faces
    from vlcurate.pipeline.devices import resolve_device

    return MTCNN_TORCH if resolve_device(config.device).startswith("cuda") else "haar"


def settings(config: ScoreConfig) -> dict:
    """What decides a shard's scores (not how fast they come); ``auto`` faces resolved, so a
    resume on another kind of device is refused rather than mixing detectors."""
    keys = ("model", "pretrained", "nsfw", "watermark", "watermark_min_clip", "phash")
    return {"faces": face_detector_of(config), **{key: getattr(config, key) for key in keys}}
