"""The recipe's thresholds over the joined score table: the first rule a sample fails names its
drop reason. Every bound is inclusive on the kept side (see
:mod:`vlcurate.pipeline.select.config`)."""

import math

import numpy as np
import pyarrow as pa

from vlcurate.pipeline.select.config import SelectConfig
from vlcurate.schemas import score as score_schema
from vlcurate.schemas import select as reasons


def clip_threshold(clip: np.ndarray, decoded: np.ndarray, config: SelectConfig) -> float | None:
    """``clip_min``, or the similarity of the last sample inside the top ``clip_top_fraction``
    of the decoded ones (ties with it are kept too)."""
    if config.clip_top_fraction is None:
        return config.clip_min
    values = np.sort(clip[decoded & ~np.isnan(clip)])[::-1]
    if len(values) == 0:
        return None
    return float(values[max(0, math.ceil(len(values) * config.clip_top_fraction) - 1)])


def rule_reasons(table: pa.Table, clip_column: str, config: SelectConfig) -> tuple[list, dict]:
    """``(reason or None per row, facts)``; facts has the CLIP threshold applied."""
    n = table.num_rows
    status = np.array(table["status"].to_pylist(), dtype=object)
    decoded = status == score_schema.DECODED
    clip = _floats(table, clip_column)
    threshold = clip_threshold(clip, decoded, config)
    width = _sizes(table, "original_width", "width")
    height = _sizes(table, "original_height", "height")
    short, long = np.minimum(width, height), np.maximum(width, height)
    with np.errstate(invalid="ignore", divide="ignore"):
        aspect = long / short
    checks = []  # (reason, boolean mask of rows that fail), in order
    if config.languages is not None:
        language = np.array(table["language"].to_pylist(), dtype=object)
        checks.append((reasons.LANGUAGE, ~np.isin(language, list(config.languages))))
    if config.min_side is not None:
        checks.append((reasons.IMAGE_TOO_SMALL, ~(short >= config.min_side)))
    if config.max_aspect_ratio is not None:
        checks.append((reasons.ASPECT_RATIO, ~(aspect <= config.max_aspect_ratio)))
    if threshold is not None:
        checks.append((reasons.CLIP_SIMILARITY, ~(clip >= np.float32(threshold))))
    if config.nsfw_max is not None:
        checks.append((reasons.NSFW, _floats(table, "nsfw_p") > np.float32(config.nsfw_max)))
    if config.watermark_max is not None:
        watermark = _floats(table, "watermark_p")
        checks.append((reasons.WATERMARK, watermark > np.float32(config.watermark_max)))
    if config.faces == "drop":
        faces = np.nan_to_num(_floats(table, "face_count"))
        checks.append((reasons.FACES, faces > 0))
    out = np.where(decoded, None, status).astype(object)
    for reason, fails in checks:
        out[(out == None) & fails] = reason  # noqa: E711 (elementwise)
    return list(out) if n else [], {"clip_threshold": threshold}


def _floats(table: pa.Table, column: str) -> np.ndarray:
    """A column as float (null -> NaN); a NaN passes no lower bound and fails no upper one."""
    if column not in table.column_names:
        return np.full(table.num_rows, np.nan)
    values = table[column].to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float64 if values.dtype != np.float32 else np.float32)


def _sizes(table: pa.Table, original: str, decoded: str) -> np.ndarray:
    """The original image's side (what the page served), or the decoded one where unknown."""
    first, second = _floats(table, original), _floats(table, decoded)
    return np.where(np.isnan(first), second, first)
