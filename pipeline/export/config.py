"""The export stage's settings: which release format to write."""

from dataclasses import dataclass, field
from typing import ClassVar

from vlcurate.pipeline.config import Config
from vlcurate.schemas.export import FORMAT_LAION, FORMATS


@dataclass
class ExportConfig(Config):
    section: ClassVar[str] = "export"

    format: str = field(
        default=FORMAT_LAION,
        metadata={
            "help": "release format: laion (LAION-5B's parquet columns URL, TEXT, WIDTH, "
            "HEIGHT, similarity, punsafe, pwatermark, hash, LANGUAGE, plus DataComp's uid and "
            "the source page_url)",
            "choices": FORMATS,
        },
    )
