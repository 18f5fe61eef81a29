"""Caption rules that need no model: validity, length, and junk alt text."""

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from vlcurate.pipeline.filters.base import Filter
from vlcurate.pipeline.verdict import Verdict, first_reason
from vlcurate.schemas.filter import (
    CAPTION_CONTROL_CHARS,
    CAPTION_DIGITS,
    CAPTION_EMPTY,
    CAPTION_FILENAME,
    CAPTION_GENERIC,
    CAPTION_OVERSIZED,
    CAPTION_PUNCTUATION,
    CAPTION_URL,
    TOO_FEW_CHARS,
    TOO_FEW_WORDS,
    TOO_MANY_CHARS,
    TOO_MANY_WORDS,
)

IMAGE_EXTENSIONS = r"jpe?g|jfif|png|gif|webp|bmp|svg|tiff?|heic|heif|avif|ico"
# Camera and tool names: IMG_2031, DSC0001, DSCN1234, P1010001, Screenshot 2024-01-01, ...
_CAMERA = r"(?:img|dsc|dscn|dscf|dcim|pict?|imag|photo|image|mvimg|pxl|gopr|screenshot|scan|p)"
FILENAME_PATTERN = (
    rf"(?i)^(?:[\w\-. ()]*\.(?:{IMAGE_EXTENSIONS})"  # anything.jpg
    rf"|{_CAMERA}[_\- ]?\d[\d_\- ]{{2,}}\w*"  # IMG_2031, DSC0001, PXL_20240101_1234
    r"|[0-9a-f]{16,}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"  # hashes
)
URL_PATTERN = r"(?i)^(?:https?://|www\.)\S+$"
DIGITS_PATTERN = r"^[\s.,:;/\\#+\-_()]*\d[\d\s.,:;/\\#+\-_()]*$"  # at least one digit
PUNCTUATION_PATTERN = r"^[\p{P}\p{S}\s]+$"
GENERIC_CAPTIONS = (
    "image",
    "images",
    "img",
    "photo",
    "photos",
    "photograph",
    "picture",
    "pictures",
    "pic",
    "pics",
    "untitled",
    "untitled image",
    "logo",
    "icon",
    "thumbnail",
    "thumb",
    "banner",
    "click here",
    "click to enlarge",
    "read more",
    "more",
    "placeholder",
    "spacer",
    "blank",
    "default",
    "avatar",
    "profile",
    "profile picture",
    "no image",
    "image not found",
    "null",
    "none",
    "undefined",
    "alt",
    "alt text",
    "graphic",
    "figure",
    "header",
    "background",
)
_CONTROL_PATTERN = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
_TRIM = " \t.,:;!?-_()[]{}\"'*|/\\"


def _caption(table: pa.Table) -> pa.ChunkedArray:
    return table.column("caption")


@dataclass
class CaptionValid(Filter):
    """Rejects captions no rule should have to look at: empty, with control characters, or
    absurdly large. Always runs first."""

    name = "caption_valid"
    reasons = (CAPTION_EMPTY, CAPTION_CONTROL_CHARS, CAPTION_OVERSIZED)
    max_bytes: int = field(
        default=65536, metadata={"help": "longer captions are oversized", "min": 1}
    )

    def judge(self, table):
        caption = _caption(table)
        empty = pc.or_kleene(pc.is_null(caption), pc.equal(pc.utf8_trim_whitespace(caption), ""))
        oversized = pc.greater(pc.binary_length(caption), self.max_bytes)
        controls = pc.match_substring_regex(caption, _CONTROL_PATTERN)
        return Verdict(
            first_reason(
                table.num_rows,
                (CAPTION_EMPTY, empty),
                (CAPTION_OVERSIZED, oversized),
                (CAPTION_CONTROL_CHARS, controls),
            )
        )


@dataclass
class CharLength(Filter):
    """Caption length in characters (LAION: at least 5; DataComp: more than 5)."""

    name = "char_length"
    reasons = (TOO_FEW_CHARS, TOO_MANY_CHARS)
    min: int = field(
        default=0,
        metadata={"help": "fewer characters than this are dropped", "min": 0, "at_most": "max"},
    )
    max: int | None = field(
        default=None, metadata={"help": "more characters are dropped; null: no limit", "min": 0}
    )

    def judge(self, table):
        length = pc.utf8_length(_caption(table))
        rules = [(TOO_FEW_CHARS, pc.less(length, self.min))]
        if self.max is not None:
            rules.append((TOO_MANY_CHARS, pc.greater(length, self.max)))
        return Verdict(first_reason(table.num_rows, *rules))


@dataclass
class WordCount(Filter):
    """Caption length in whitespace-separated words (DataComp: more than 2)."""

    name = "word_count"
    reasons = (TOO_FEW_WORDS, TOO_MANY_WORDS)
    min: int = field(
        default=0,
        metadata={"help": "fewer words than this are dropped", "min": 0, "at_most": "max"},
    )
    max: int | None = field(
        default=None, metadata={"help": "more words are dropped; null: no limit", "min": 0}
    )

    def judge(self, table):
        words = pc.list_value_length(
            pc.ascii_split_whitespace(pc.utf8_trim_whitespace(_caption(table)))
        )
        rules = [(TOO_FEW_WORDS, pc.less(words, self.min))]
        if self.max is not None:
            rules.append((TOO_MANY_WORDS, pc.greater(words, self.max)))
        return Verdict(first_reason(table.num_rows, *rules))


@dataclass
class JunkCaption(Filter):
    """Alt text that describes nothing: a file name, a generic word, a bare URL, only digits
    or only punctuation. Each check can be switched off."""

    name = "junk_caption"
    reasons = (CAPTION_FILENAME, CAPTION_URL, CAPTION_GENERIC, CAPTION_DIGITS, CAPTION_PUNCTUATION)
    filenames: bool = field(default=True, metadata={"help": "IMG_2031.JPG, DSC0001, hashes"})
    urls: bool = field(default=True, metadata={"help": "a caption that is only a URL"})
    generic: list[str] = field(
        default_factory=lambda: list(GENERIC_CAPTIONS),
        metadata={"help": "captions that are only one of these (case and punctuation ignored)"},
    )
    digits: bool = field(default=True, metadata={"help": "only digits and separators"})
    punctuation: bool = field(default=True, metadata={"help": "only punctuation and symbols"})

    def judge(self, table):
        caption = pc.utf8_trim_whitespace(_caption(table))
        rules = []
        if self.filenames:
            rules.append((CAPTION_FILENAME, pc.match_substring_regex(caption, FILENAME_PATTERN)))
        if self.urls:
            rules.append((CAPTION_URL, pc.match_substring_regex(caption, URL_PATTERN)))
        if self.generic:
            normalised = pc.utf8_trim(pc.utf8_lower(caption), characters=_TRIM)
            generic = pa.array(sorted({g.lower() for g in self.generic}))
            rules.append((CAPTION_GENERIC, pc.is_in(normalised, value_set=generic)))
        if self.digits:
            rules.append((CAPTION_DIGITS, pc.match_substring_regex(caption, DIGITS_PATTERN)))
        if self.punctuation:
            rules.append(
                (CAPTION_PUNCTUATION, pc.match_substring_regex(caption, PUNCTUATION_PATTERN))
            )
        return Verdict(first_reason(table.num_rows, *rules))
