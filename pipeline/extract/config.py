"""The extract stage's settings."""

from dataclasses import dataclass, field


@dataclass
class ExtractConfig:
    max_page_bytes: int = field(
        default=5 * 2**20,
        metadata={"help": "pages larger than this, raw or decompressed, are page_too_large"},
    )
    max_alt_chars: int = field(default=1000, metadata={"help": "alt text is cut to this length"})
    max_url_length: int = field(default=2048, metadata={"help": "longer image URLs are bad_url"})
    keep_truncated: bool = field(
        default=False,
        metadata={"help": "extract records cut short by a damaged file instead of dropping them"},
    )
    compiled: bool = field(
        default=True,
        metadata={
            "help": "parse pages with the compiled document pass (the Python path takes a page it "
            "declines, or every page when off or not built; stats.json's compiled_pass says which)"
        },
    )
    rows_per_group: int = field(
        default=2000, metadata={"help": "documents per parquet row group (bounds task memory)"}
    )
