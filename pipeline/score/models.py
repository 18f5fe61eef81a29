"""The models of the score stage, loaded once per process and device and reused for every
shard that process scores (a local worker's shards, or the Spark tasks of one Python worker)."""

from vlcurate.pipeline.score.clip import ClipScorer
from vlcurate.pipeline.score.config import (
    MTCNN_TORCH,
    OCR,
    OPEN_NSFW,
    ScoreConfig,
    face_detector_of,
)
from vlcurate.pipeline.score.heads import embedding_scorer

MODEL_SETTINGS = ("model", "pretrained", "faces", "nsfw", "watermark")


class Scorers:
    """CLIP and the scorers beside it. Bad model settings (missing weights, a head of the wrong
    width) fail here, before any image is read."""

    def __init__(self, config: ScoreConfig, device: str):
        self.clip = ClipScorer(config.model, config.pretrained, device)
        self.nsfw_model = self.watermark_model = self.face_model = None
        self.nsfw = self.watermark = None  # scorers of the image embedding
        self.open_nsfw = None
        if config.nsfw == OPEN_NSFW:
            from vlcurate.pipeline.score.nsfw import MODEL_NAME, OpenNsfw

            self.open_nsfw, self.nsfw_model = OpenNsfw(device=device), MODEL_NAME
        elif config.nsfw != "none":
            self.nsfw = embedding_scorer(config.nsfw, self.clip, "nsfw")
            self.nsfw_model = self.nsfw.name
        if config.watermark == OCR:
            from vlcurate.pipeline.score.watermark import MODEL_NAME as OCR_MODEL

            self.watermark_model = OCR_MODEL
        elif config.watermark != "none":
            self.watermark = embedding_scorer(config.watermark, self.clip, "watermark")
            self.watermark_model = self.watermark.name
        self.faces = face_detector_of(config)
        self.face_device = None  # a detector batched on the device, else the workers' own
        if self.faces == MTCNN_TORCH:
            from vlcurate.pipeline.score.mtcnn_torch import TorchMtcnn

            self.face_device = TorchMtcnn(device=device)
            self.face_model = self.face_device.name
        elif self.faces != "none":
            from vlcurate.pipeline.score.faces import face_detector

            self.face_model = face_detector(self.faces).name


_LOADED: dict[str, tuple[tuple, Scorers]] = {}  # device -> (its model settings, the models)


def scorers_for(config: ScoreConfig, device: str) -> Scorers:
    """The models for ``config`` on ``device``, loaded on the first call in this process and
    kept (one set per device: other settings replace them)."""
    key = tuple(getattr(config, name) for name in MODEL_SETTINGS)
    loaded = _LOADED.get(device)
    if loaded is None or loaded[0] != key:
        _LOADED.pop(device, None)  # free the old models before loading the new ones
        _LOADED[device] = (key, Scorers(config, device))
    return _LOADED[device][1]
