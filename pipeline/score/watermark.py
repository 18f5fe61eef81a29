"""Visible stock-photo watermarks, found by reading the image: PP-OCRv4 text detection and
recognition (rapidocr-onnxruntime, ONNX models inside the wheel, nothing downloaded) and a fuzzy
match of the text against the agencies' marks in ``STOCK_MARKS``.

The text is lowercased, accents and punctuation dropped ("(c)" becomes "©") and the lines joined
without spaces, so "Shutter stock" and "SHUTTERSTOCK" read alike. Each mark has an edit budget
(insertions, deletions, substitutions) in ``STOCK_MARKS``. A long mark matches where some stretch
of the text is within it: "shutterstck" and "hutterstocl" are shutterstock, "shutter" is not. A
short mark (``SHORT_MARK`` letters or fewer) must start a word, and matches fuzzily only as whole
words no shorter than itself: "alany" is alamy, "calamity" is not, and "stock", "123" and
"tavistock" are not istock or 123rf. Budgets are kept low where ordinary words come near a mark
(dreamstime 1: "dreams come true"; watermark 0: "waterpark").
PP-OCRv4's character set has no "©", so the sign is only found written as "(c)" or "copyright".

``watermark_p`` is a rule, not a trained probability:

- a stock mark: ``0.6 + 0.4 * conf * (1 - edits / len(mark))``, where conf is the lowest OCR
  confidence of the lines the match spans: an exact, confident read gives about 0.98, the
  weakest accepted match about 0.75;
- other text (lines with three or more letters or digits): ``0.3 * conf`` when at most three
  lines are read and one of them is small (under 15% of the image) and sits where overlays go
  (the top or bottom fifth, or the centre), ``0.1 * conf`` otherwise (signs, documents,
  screenshots, posters), conf the highest line confidence;
- nothing legible: 0.

``watermark_text`` is the matched marks' names ("shutterstock", "getty images, image id"), else
the text read (at most 100 characters), else "".
"""

import re
import unicodedata
from dataclasses import dataclass, field

MODEL_NAME = "rapidocr-ppocrv4+stock-marks/1"

# mark -> edits allowed when matching it (0: exact). Spaces in a mark are ignored.
STOCK_MARKS: dict[str, int] = {
    "shutterstock": 3,
    "alamy": 1,
    "getty images": 2,
    "istock": 1,  # a whole word, so "stock" and "stocks" are not istock
    "dreamstime": 1,  # 2 would take "dreams come true"
    "123rf": 0,
    "depositphotos": 2,
    "adobe stock": 2,
    "bigstock": 1,
    "fotolia": 1,
    "can stock photo": 1,
    "vectorstock": 2,
    "agefotostock": 2,
    "superstock": 1,  # 2 would take "superstore"
    "stocksy": 0,  # "stocks"
    "pond5": 0,
    "freepik": 1,
    "envato": 1,
    "image id": 1,  # the agencies' footer strip: "Image ID: 2B4X7KJ"
    "watermark": 0,  # "waterpark"
    "copyright": 2,
    "©": 0,
}

MARK_BASE, MARK_SPAN = 0.6, 0.4  # p = base + span * conf * (1 - edits / len(mark))
OVERLAY_P, OTHER_TEXT_P = 0.3, 0.1  # p = this * conf for text that names no mark
MAX_TEXT = 100  # characters of watermark_text
SHORT_MARK = 7  # marks up to this long (without spaces) match fuzzily only as whole words


def words(text: str) -> list[str]:
    """Lowercase runs of ASCII letters and digits (and "©"), accents stripped."""
    text = unicodedata.normalize("NFKD", re.sub(r"\(\s*c\s*\)", "©", text.lower()))
    text = "".join(c for c in text if not unicodedata.combining(c))
    return [w for w in re.split(r"[^a-z0-9©]+", text) if w]


def normalise(text: str) -> str:
    """``text`` without case, accents, spaces or punctuation: "Shutter-Stock" -> "shutterstock"."""
    return "".join(words(text))


def edit_distance(pattern: str, text: str, substring: bool = False) -> tuple[int, int]:
    """``(edits, end)``: the fewest insertions, deletions and substitutions turning ``pattern``
    into ``text``, or with ``substring`` into some ``text[start:end]`` (Sellers' approximate
    substring match: the start and end in ``text`` are free)."""
    previous = [0] * (len(text) + 1) if substring else list(range(len(text) + 1))
    for i, p in enumerate(pattern, 1):
        current = [i]
        for j, t in enumerate(text, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (p != t)))
        previous = current
    if not substring:
        return previous[-1], len(text)
    edits = min(previous)
    return edits, previous.index(edits)


def match_marks(text: str) -> list[tuple[str, int, int, int]]:
    """The stock marks in ``text`` as ``(mark, edits, start, end)``, the closest first; start
    and end are positions in ``normalise(text)``. A long mark (over ``SHORT_MARK`` characters)
    matches where a stretch of the text is within its edit budget. A short one matches only at
    the start of a word: exactly, or, within its budget, as whole words no shorter than the mark
    ("alany" and "alarmy" are alamy; "calamity", "lamy" and "tavistock" are nothing)."""
    found, tokens = [], words(text)
    compact = "".join(tokens)
    offsets = [0]
    for token in tokens:
        offsets.append(offsets[-1] + len(token))
    for mark, budget in STOCK_MARKS.items():
        pattern, n = normalise(mark), len(words(mark))
        short = len(pattern) <= SHORT_MARK
        starts = [i for i in range(len(compact)) if compact.startswith(pattern, i)]
        starts = [i for i in starts if i in offsets] if short else starts  # "tavistock"
        if starts:
            found.append((mark, 0, starts[0], starts[0] + len(pattern)))
        elif budget and not short:
            edits, end = edit_distance(pattern, compact, substring=True)
            if edits <= budget:
                found.append((mark, edits, max(0, end - len(pattern)), end))
        elif budget:
            near = [
                (edit_distance(pattern, "".join(tokens[i : i + n]))[0], i)
                for i in range(len(tokens) - n + 1)
                if len("".join(tokens[i : i + n])) >= len(pattern)
            ]
            edits, i = min(near, default=(budget + 1, 0))
            if edits <= budget:
                found.append((mark, edits, offsets[i], offsets[i + n]))
    return sorted(found, key=lambda m: m[1] / len(normalise(m[0])))


def _overlay_like(box, width: int, height: int) -> bool:
    xs, ys = [p[0] for p in box], [p[1] for p in box]
    area = (max(xs) - min(xs)) * (max(ys) - min(ys))
    cx, cy = sum(xs) / len(xs) / width, sum(ys) / len(ys) / height
    band = cy < 0.2 or cy > 0.8
    centre = abs(cx - 0.5) < 0.15 and abs(cy - 0.5) < 0.15
    return area < 0.15 * width * height and (band or centre)


def watermark_score(lines: list[tuple[list, str, float]], width: int, height: int) -> dict:
    """``{"watermark_p", "watermark_text"}`` from OCR lines ``(box, text, confidence)`` of an
    image of ``width`` x ``height`` (the rule in the module docstring)."""
    spans, at = [], 0  # (start, end, confidence) of each line in normalise(all the text)
    for _, text, conf in lines:
        spans.append((at, at + len(normalise(text)), conf))
        at = spans[-1][1]
    marks = match_marks("\n".join(line[1] for line in lines))
    if marks:
        mark, edits, start, end = marks[0]
        conf = min((c for s, e, c in spans if s < end and e > start), default=0.0)
        p = MARK_BASE + MARK_SPAN * conf * (1 - edits / len(normalise(mark)))
        names = ", ".join(dict.fromkeys(m[0] for m in marks))
        return {"watermark_p": round(p, 4), "watermark_text": names}
    legible = [line for line in lines if len(normalise(line[1])) >= 3]
    if not legible:
        return {"watermark_p": 0.0, "watermark_text": ""}
    conf = max(line[2] for line in legible)
    overlay = len(legible) <= 3 and any(_overlay_like(b, width, height) for b, _, _ in legible)
    p = (OVERLAY_P if overlay else OTHER_TEXT_P) * conf
    text = " ".join(line[1] for line in legible)[:MAX_TEXT]
    return {"watermark_p": round(p, 4), "watermark_text": text}


@dataclass
class OcrWatermark:
    """``score_batch(images)`` -> per image ``{"watermark_p", "watermark_text"}`` (None for a
    missing image). Picklable: the OCR sessions are rebuilt on unpickling."""

    min_text_score: float = field(
        default=0.5, metadata={"help": "OCR confidence below which a text line is ignored"}
    )
    max_side: int = field(
        default=640,
        metadata={"help": "images are scaled down to this longer side before OCR (speed)"},
    )
    min_side: int = field(
        default=640,
        metadata={"help": "images are scaled up to this longer side before OCR; 0: never"},
    )
    threads: int = field(
        default=1,
        metadata={"help": "onnxruntime threads; 1 suits one scorer per DataLoader worker; 0: all"},
    )

    def __post_init__(self):
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as e:
            raise RuntimeError(
                "the OCR watermark scorer needs rapidocr-onnxruntime, installed by `make venv` "
                "with `pip install --no-deps rapidocr-onnxruntime` (it declares opencv-python, "
                "which clashes with opencv-python-headless)"
            ) from e
        self._ocr = RapidOCR(
            text_score=self.min_text_score,
            max_side_len=max(self.max_side, self.min_side),  # the image is already this size
            det_limit_type="max",  # detect at the image's size, not upscaled to 736
            det_limit_side_len=max(self.max_side, self.min_side),
            use_cls=False,  # overlays are upright; saves a network pass
            intra_op_num_threads=self.threads or -1,
        )

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_ocr"}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.__post_init__()

    def _resize(self, image):
        from PIL import Image

        side = max(image.size)
        target = min(max(side, self.min_side), self.max_side)
        if target == side:
            return image
        scale = target / side
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        return image.resize(size, Image.Resampling.BILINEAR)

    def detect(self, image) -> dict:
        image = self._resize(image.convert("RGB"))
        result, _ = self._ocr(image)  # a PIL image: RapidOCR converts it to BGR itself
        lines = [(box, text, float(conf)) for box, text, conf in result or []]
        return watermark_score(lines, image.width, image.height)

    def score_batch(self, images: list) -> list[dict]:
        return [
            self.detect(image)
            if image is not None
            else {"watermark_p": None, "watermark_text": None}
            for image in images
        ]
