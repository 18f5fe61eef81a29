"""A final shard's samples as rows of LAION's parquet (:data:`vlcurate.schemas.export.
LAION_SCHEMA`): each sample's json fields, renamed."""

import pyarrow as pa

from vlcurate.pipeline.export.murmur import laion_hash
from vlcurate.pipeline.stats import Tally
from vlcurate.schemas import export as schema


def _original(sample: dict, side: str):
    """The original image's side (what LAION's WIDTH/HEIGHT are), else the downloaded one."""
    value = sample.get(f"original_{side}")
    return value if value is not None else sample.get(side)


def laion_row(sample: dict, clip: str | None) -> dict:
    url, text = sample.get("url"), sample.get("caption")
    return {
        "URL": url,
        "TEXT": text,
        "WIDTH": _original(sample, "width"),
        "HEIGHT": _original(sample, "height"),
        "similarity": sample.get(clip) if clip else None,
        "punsafe": sample.get("nsfw_p"),
        "pwatermark": sample.get("watermark_p"),
        "hash": laion_hash(url, text),
        "uid": sample.get("uid"),
        "LANGUAGE": sample.get("language"),
        "page_url": sample.get("page_url"),
    }


def laion_table(samples: list[dict], clip: str | None, tally: Tally, about: dict) -> pa.Table:
    """The release rows of ``samples``, in order, each counted in ``tally``; ``about``: text
    fields for the file's schema metadata (the models behind the scores)."""
    rows = []
    for sample in samples:
        if not sample.get("url"):
            tally.drop(schema.NO_URL)
            continue
        rows.append(laion_row(sample, clip))
        tally.keep()
    base = schema.LAION_SCHEMA
    meta = {**base.metadata, **{k.encode(): str(v).encode() for k, v in about.items()}}
    return pa.Table.from_pylist(rows, schema=base.with_metadata(meta))
