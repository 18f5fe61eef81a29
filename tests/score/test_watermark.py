"""The OCR watermark scorer on real photos with stock-site overlays drawn on them, and its mark
matcher on OCR-like misreadings."""

import pickle

import matplotlib
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from vlcurate.pipeline.score.watermark import OcrWatermark, match_marks, normalise, watermark_score

skimage_data = pytest.importorskip("skimage.data")
FONT = matplotlib.get_data_path() + "/fonts/ttf/DejaVuSans.ttf"


def photo(name: str, width: int = 512) -> Image.Image:
    image = Image.fromarray(getattr(skimage_data, name)()).convert("RGB")
    return image.resize((width, round(width * image.height / image.width)))


def overlay(image: Image.Image, text: str, opacity: float = 0.55, fraction: float = 1 / 7):
    """``text`` large across the middle in semi-transparent white, as stock sites do."""
    base = image.convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    pen = ImageDraw.Draw(layer)
    font = ImageFont.truetype(FONT, size=round(base.width * fraction))
    box = pen.textbbox((0, 0), text, font=font)
    x = (base.width - (box[2] - box[0])) // 2 - box[0]
    y = (base.height - (box[3] - box[1])) // 2 - box[1]
    pen.text((x, y), text, font=font, fill=(255, 255, 255, round(255 * opacity)))
    return Image.alpha_composite(base, layer).convert("RGB")


@pytest.fixture(scope="module")
def ocr():
    return OcrWatermark()


@pytest.mark.parametrize(
    "name, text, mark",
    [
        ("coffee", "shutterstock", "shutterstock"),
        ("astronaut", "shutterstock", "shutterstock"),
        ("chelsea", "alamy", "alamy"),
        ("rocket", "© dreamstime", "dreamstime"),
    ],
)
def test_stock_overlay_is_flagged_and_the_clean_photo_is_not(ocr, name, text, mark):
    clean = photo(name)
    marked = ocr.detect(overlay(clean, text))
    assert marked["watermark_p"] >= 0.5 and mark in marked["watermark_text"], marked
    assert ocr.detect(clean)["watermark_p"] < 0.5


def test_other_overlay_text_is_only_a_modest_score(ocr):
    result = ocr.detect(overlay(photo("coffee"), "summer sale"))
    assert 0 < result["watermark_p"] <= 0.3, result
    assert "sale" in result["watermark_text"].lower()


def test_small_and_large_images_are_resized_for_ocr(ocr):
    for width in (256, 1400):
        marked = ocr.detect(overlay(photo("chelsea", width), "shutterstock"))
        assert marked["watermark_p"] >= 0.5 and marked["watermark_text"] == "shutterstock"


def test_score_batch_keeps_order_and_scores_no_image_as_none(ocr):
    clean, marked = photo("rocket", 256), overlay(photo("rocket", 256), "shutterstock")
    results = ocr.score_batch([None, marked, clean])
    assert results[0] == {"watermark_p": None, "watermark_text": None}
    assert results[1]["watermark_p"] >= 0.5 and results[2]["watermark_p"] < 0.5


def test_pickles_for_dataloader_workers(ocr):
    copy = pickle.loads(pickle.dumps(ocr))
    assert copy == ocr
    assert copy.detect(Image.new("RGB", (64, 48), "gray")) == {
        "watermark_p": 0.0,
        "watermark_text": "",
    }


@pytest.mark.parametrize(
    "text, mark",
    [
        ("SHUTTERSTOCK", "shutterstock"),
        ("Shutter stock", "shutterstock"),
        ("shutterstck", "shutterstock"),
        ("hutterstocl", "shutterstock"),
        ("www.shutterstock.com · 1029384756", "shutterstock"),
        ("alany", "alamy"),
        ("alarmy", "alamy"),
        ("Getty Images", "getty images"),
        ("gettyimages", "getty images"),
        ("iStock by Getty Images", "istock"),
        ("iStoek", "istock"),
        ("www.istockphoto.com", "istock"),
        ("dreamstim", "dreamstime"),
        ("© dreamstime.com", "dreamstime"),
        ("123RF", "123rf"),
        ("depositphot0s", "depositphotos"),
        ("Adobe Stock", "adobe stock"),
        ("fotolia", "fotolia"),
        ("Can Stock Photo", "can stock photo"),
        ("(c) Jane Doe 2019", "©"),
        ("Image ID: 2B4X7KJ", "image id"),
    ],
)
def test_marks_match_through_ocr_noise(text, mark):
    assert mark in [m[0] for m in match_marks(text)]


@pytest.mark.parametrize(
    "text",
    [
        "shutter",
        "stock market",
        "stock",
        "stocks",
        "123",
        "calamity",
        "lamy",
        "Tavistock",
        "dreams come true",
        "waterpark",
        "getty",
        "adobe",
        "photos",
        "summer sale",
        "",
    ],
)
def test_ordinary_words_match_no_mark(text):
    assert match_marks(text) == []


def test_normalise():
    assert normalise("Shutter-Stock® ©") == "shutterstock©"
    assert normalise("Dépôt (c) 2020") == "depot©2020"


def box(x0, y0, x1, y1):
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def test_probability_rule():
    assert watermark_score([], 100, 100) == {"watermark_p": 0.0, "watermark_text": ""}
    exact = watermark_score([(box(10, 40, 90, 60), "shutterstock", 0.98)], 100, 100)
    assert exact["watermark_p"] == pytest.approx(0.6 + 0.4 * 0.98)
    noisy = watermark_score([(box(10, 40, 90, 60), "shutterstck", 0.8)], 100, 100)
    assert 0.75 <= noisy["watermark_p"] < exact["watermark_p"]
    # a caption-sized credit in the bottom corner: modest; text all over: lower still
    credit = watermark_score([(box(70, 90, 98, 98), "Jane Doe", 0.9)], 100, 100)
    assert credit == {"watermark_p": pytest.approx(0.27), "watermark_text": "Jane Doe"}
    page = [(box(5, y, 95, y + 8), f"line {y} of a page", 0.9) for y in range(0, 90, 10)]
    assert watermark_score(page, 100, 100)["watermark_p"] == pytest.approx(0.09)
    # single stray glyphs (a cat's eye read as "O") are not text
    assert watermark_score([(box(40, 40, 50, 50), "O", 0.7)], 100, 100)["watermark_p"] == 0.0


def test_detect_takes_any_pil_mode(ocr):
    gray = Image.fromarray(np.full((40, 60), 128, np.uint8))
    assert ocr.detect(gray)["watermark_p"] == 0.0
