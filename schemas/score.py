"""Records written by the score stage (``OUTPUT/scores/NNNNN.parquet``, one per input shard).

Accounting unit: one sample of an input shard. A sample is kept when its image decodes (it is
then scored and embedded), or dropped with its decode status as the reason. Every sample has a
row, whatever its status; a scorer that was switched off leaves its columns null, so every
shard has the same columns. ``in == kept + sum(dropped.values())`` in ``stats.json``.

The CLIP similarity column is named after the model (``clip_vit_b_32_sim``), so scores of two
models can sit side by side; ``*_model`` columns name the model behind each probability.
"""

import pyarrow as pa

SCHEMA_VERSION = "score/2"

# --- decode statuses: "ok", or the drop reason ------------------------------------------------
DECODED = "ok"
EMPTY_FILE = "empty_file"  # the shard holds no image bytes for the sample
DECODE_ERROR = "decode_error"  # truncated, corrupt, or not an image
TOO_LARGE = "too_large"  # over Pillow's decompression-bomb limit

_BEFORE_CLIP = [
    ("index", pa.int64()),  # position of the sample in its shard
    ("key", pa.string()),  # the WebDataset __key__
    ("uid", pa.string()),
    ("url", pa.string()),
    ("caption", pa.string()),
    ("status", pa.string()),
    ("bytes", pa.int64()),
    ("format", pa.string()),  # JPEG, PNG, WEBP, GIF, ...
    ("width", pa.int64()),
    ("height", pa.int64()),
    ("aspect_ratio", pa.float64()),
    ("frames", pa.int64()),  # > 1: animated, scored on the first frame
    ("phash", pa.string()),  # 64-bit DCT perceptual hash, hex
    ("face_count", pa.int64()),
    ("face_boxes", pa.string()),  # JSON [[x, y, w, h], ...] in pixels of the decoded image
    ("face_model", pa.string()),
]
_AFTER_CLIP = [
    ("nsfw_p", pa.float32()),
    ("nsfw_model", pa.string()),
    ("watermark_p", pa.float32()),
    ("watermark_model", pa.string()),
    ("watermark_text", pa.string()),  # what OCR matched (OCR watermark scorer only)
]

METADATA_SCHEMA = pa.schema(  # clip-retrieval's metadata/, row i <-> row i of img_emb/text_emb
    [
        ("index", pa.int64()),
        ("key", pa.string()),
        ("uid", pa.string()),
        ("url", pa.string()),
        ("caption", pa.string()),
    ]
)


def scores_schema(clip_column: str) -> pa.Schema:
    return pa.schema([*_BEFORE_CLIP, (clip_column, pa.float32()), *_AFTER_CLIP])
