"""The recipe's thresholds over the joined score table, as rules of the one filter protocol
(:mod:`vlcurate.pipeline.verdict`): each rule's ``judge(batch) -> Verdict`` names its reason for
the rows it drops, and :class:`Rules` gives each row the reason of the first rule it fails, in
the order of :data:`vlcurate.schemas.select.RULE_REASONS` (the score stage's decode status
first). Every bound is inclusive on the kept side (see :mod:`vlcurate.pipeline.select.config`).
"""

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from vlcurate.pipeline.select.config import SelectConfig
from vlcurate.pipeline.verdict import Verdict, first_reason
from vlcurate.schemas import score as score_schema
from vlcurate.schemas import select as reasons
from vlcurate.schemas.filter import NOLANG


@dataclass(frozen=True)
class Decoded:
    """A sample the score stage could not decode is dropped with its status as the reason."""

    def judge(self, batch: pa.Table) -> Verdict:
        status = np.array(batch["status"].to_pylist(), dtype=object)
        return Verdict(np.where(status == score_schema.DECODED, None, status).astype(object))


@dataclass(frozen=True)
class Bound:
    """``column`` (a score, or a derived size) outside ``[low, high]`` fails with ``reason``.
    A missing value (NaN) passes no lower bound; it passes an upper bound unless
    ``missing_fails`` (an aspect ratio of an image of unknown size)."""

    reason: str
    column: str
    low: float | None = None
    high: float | None = None
    missing_fails: bool = False

    def judge(self, batch: pa.Table) -> Verdict:
        values = column_values(batch, self.column)
        fails = np.zeros(len(values), dtype=bool)
        if self.low is not None:
            fails |= ~(values >= values.dtype.type(self.low))
        if self.high is not None:
            high = values.dtype.type(self.high)
            fails |= ~(values <= high) if self.missing_fails else values > high
        return Verdict(first_reason(batch.num_rows, (self.reason, fails)))


@dataclass(frozen=True)
class Languages:
    """Keeps a caption whose ``language`` (the filter stage's) is one of ``keep``: ISO 639
    codes, ``nolang`` (LAION-5B's no-language subset, labelled by the filter's
    ``nolang_below``) and ``multilingual`` (any identified language but English, LAION's
    laion2B-multi). A caption without a language (no language rule ran) is in none of them."""

    keep: tuple[str, ...]

    def judge(self, batch: pa.Table) -> Verdict:
        language = batch["language"].to_pylist()
        named = set(self.keep) - {reasons.MULTILINGUAL}
        multi = reasons.MULTILINGUAL in self.keep
        not_multi = {None, "en", NOLANG}
        wanted = np.array(
            [code in named or (multi and code not in not_multi) for code in language], dtype=bool
        )
        return Verdict(first_reason(batch.num_rows, (reasons.LANGUAGE, ~wanted)))


@dataclass(frozen=True)
class Rules:
    """Rules in order; a row's reason is the first that drops it (None: kept)."""

    rules: tuple

    def judge(self, batch: pa.Table) -> Verdict:
        out = np.full(batch.num_rows, None, dtype=object)
        for rule in self.rules:
            found = rule.judge(batch).reasons
            out = np.where(out == None, found, out).astype(object)  # noqa: E711 (elementwise)
        return Verdict(out)


def rules_for(config: SelectConfig, clip_column: str, clip_min: float | None) -> Rules:
    """The recipe's rules, with ``clip_min`` the CLIP threshold that applies (see
    :func:`clip_threshold`)."""
    rules: list = [Decoded()]
    if config.languages is not None:
        rules.append(Languages(tuple(config.languages)))
    if config.min_side is not None:
        rules.append(Bound(reasons.IMAGE_TOO_SMALL, SHORT_SIDE, low=config.min_side))
    if config.max_aspect_ratio is not None:
        rules.append(
            Bound(reasons.ASPECT_RATIO, ASPECT, high=config.max_aspect_ratio, missing_fails=True)
        )
    if clip_min is not None:
        rules.append(Bound(reasons.CLIP_SIMILARITY, clip_column, low=clip_min))
    if config.nsfw_max is not None:
        rules.append(Bound(reasons.NSFW, "nsfw_p", high=config.nsfw_max))
    if config.watermark_max is not None:
        rules.append(Bound(reasons.WATERMARK, "watermark_p", high=config.watermark_max))
    if config.faces == "drop":
        rules.append(Bound(reasons.FACES, FACES, high=0))
    return Rules(tuple(rules))


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
    decoded = np.array(table["status"].to_pylist(), dtype=object) == score_schema.DECODED
    threshold = clip_threshold(floats(table, clip_column), decoded, config)
    verdict = rules_for(config, clip_column, threshold).judge(table)
    return list(verdict.reasons), {"clip_threshold": threshold}


# derived columns the rules may bound, beside the table's own
SHORT_SIDE, ASPECT, FACES = "short_side", "aspect_ratio", "faces_found"


def column_values(table: pa.Table, column: str) -> np.ndarray:
    """A column as floats, or one derived from the original image's size (img2dataset's
    ``original_width``/``original_height``; the decoded size where those are unknown)."""
    if column == FACES:
        return np.nan_to_num(floats(table, "face_count"))
    if column not in (SHORT_SIDE, ASPECT):
        return floats(table, column)
    width = _sizes(table, "original_width", "width")
    height = _sizes(table, "original_height", "height")
    short, long = np.minimum(width, height), np.maximum(width, height)
    if column == SHORT_SIDE:
        return short
    with np.errstate(invalid="ignore", divide="ignore"):
        return long / short


def floats(table: pa.Table, column: str) -> np.ndarray:
    """A column as float (null -> NaN); a NaN passes no lower bound and fails no upper one."""
    if column not in table.column_names:
        return np.full(table.num_rows, np.nan)
    values = table[column].to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float64 if values.dtype != np.float32 else np.float32)


def _sizes(table: pa.Table, original: str, decoded: str) -> np.ndarray:
    """The original image's side (what the page served), or the decoded one where unknown."""
    first, second = floats(table, original), floats(table, decoded)
    return np.where(np.isnan(first), second, first)
