"""Face detection with OpenCV's Haar cascade (shipped with opencv-python-headless < 5)."""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class HaarFaces:
    """``score_batch(images)`` -> per image, the face boxes ``[x, y, w, h]`` in pixels."""

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
        boxes = self._cascade.detectMultiScale(gray, scaleFactor=self.scale_factor,
                                               minNeighbors=self.min_neighbors,
                                               minSize=(self.min_size, self.min_size))  # fmt: skip
        return [[int(v) for v in box] for box in boxes]

    def score_batch(self, images: list) -> list[list[list[int]]]:
        return [self.detect(image) if image is not None else [] for image in images]
