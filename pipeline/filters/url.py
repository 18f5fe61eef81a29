"""Rules on the image URL and on the size the page declared for the image."""

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from vlcurate.pipeline.filters.base import Filter
from vlcurate.pipeline.verdict import Verdict, first_reason
from vlcurate.schemas.filter import DECLARED_TOO_SMALL, TRACKING_PIXEL, URL_EXTENSION, URL_JUNK_WORD

# The last path segment's extension, before any query or fragment.
_EXTENSION = r"^[^?#]*/[^/?#]*\.(?P<ext>[A-Za-z0-9]{1,5})(?:[?#].*)?$"


@dataclass
class ImageExtension(Filter):
    """File-extension allow-list (mmc4: png/jpg only). URLs without an extension
    (``/image?id=3``) pass unless ``allow_missing`` is false."""

    name = "image_extension"
    reasons = (URL_EXTENSION,)
    allowed: list[str] = field(
        default_factory=lambda: ["jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff"],
        metadata={"help": "extensions that pass (case ignored)"},
    )
    allow_missing: bool = field(default=True, metadata={"help": "let URLs without one pass"})

    def judge(self, table):
        found = pc.extract_regex(table.column("url"), _EXTENSION)
        # A URL without an extension gives a null struct whose field reads "": make it null.
        ext = pc.if_else(pc.is_valid(found), pc.struct_field(found, "ext"), None)
        value_set = pa.array([e.lower() for e in self.allowed])
        allowed = pc.is_in(pc.utf8_lower(ext), value_set=value_set)
        bad = pc.invert(allowed)  # is_in says false, not null, for a missing extension
        if self.allow_missing:
            bad = pc.and_(bad, pc.is_valid(ext))
        return Verdict(first_reason(table.num_rows, (URL_EXTENSION, bad)))


@dataclass
class UrlJunkWords(Filter):
    """Image URLs naming site furniture (mmc4: logo, button, icon, plugin, widget)."""

    name = "url_junk_words"
    reasons = (URL_JUNK_WORD,)
    words: list[str] = field(
        default_factory=lambda: ["logo", "button", "icon", "plugin", "widget"],
        metadata={"help": "a URL containing any of these (case ignored) is dropped"},
    )

    def judge(self, table):
        if not self.words:  # an empty pattern would match every URL
            return Verdict(first_reason(table.num_rows))
        pattern = "|".join(sorted(self.words))
        hit = pc.match_substring_regex(table.column("url"), pattern, ignore_case=True)
        return Verdict(first_reason(table.num_rows, (URL_JUNK_WORD, hit)))


@dataclass
class TrackingPixel(Filter):
    """Images whose declared width or height is at most ``max_side`` (1x1 beacons)."""

    name = "tracking_pixel"
    reasons = (TRACKING_PIXEL,)
    max_side: int = field(
        default=1, metadata={"help": "declared sides this small are beacons", "min": 0}
    )

    def judge(self, table):
        tiny = pc.or_kleene(
            pc.less_equal(table.column("width"), self.max_side),
            pc.less_equal(table.column("height"), self.max_side),
        )
        return Verdict(first_reason(table.num_rows, (TRACKING_PIXEL, tiny)))


@dataclass
class DeclaredSize(Filter):
    """Images whose ``<img width/height>`` attributes are below a minimum. Undeclared sizes
    pass: the real size is checked after download."""

    name = "declared_size"
    reasons = (DECLARED_TOO_SMALL,)
    min_side: int = field(
        default=64, metadata={"help": "declared sides below this are dropped", "min": 0}
    )

    def judge(self, table):
        small = pc.or_kleene(
            pc.less(table.column("width"), self.min_side),
            pc.less(table.column("height"), self.min_side),
        )
        return Verdict(first_reason(table.num_rows, (DECLARED_TOO_SMALL, small)))
