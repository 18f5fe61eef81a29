"""Build small pair tables (the extract stage's schema) for filter tests, and the recipe that
keeps every pair."""

import pyarrow as pa

from vlcurate.pipeline.extract.page import pair_uid
from vlcurate.schemas.extract import PAIR_SCHEMA

# A recipe with no rules and no dedup: every extracted pair is a candidate.
KEEP_ALL = {
    "name": "keep-all",
    "version": 1,
    "source": "test",
    "filters": [],
    "dedup": {"uid": False, "max_per_url": None},
}


def pairs_table(*captions: str | None, urls=None, widths=None, heights=None, **extra) -> pa.Table:
    n = len(captions)
    urls = urls or [f"https://example.com/img/{i}.jpg" for i in range(n)]
    rows = []
    for i, caption in enumerate(captions):
        row = {
            "uid": pair_uid(caption or "", urls[i]),
            "url": urls[i],
            "caption": caption,
            "page_url": "https://example.com/page.html",
            "width": (widths or [None] * n)[i],
            "height": (heights or [None] * n)[i],
            "position": i,
            "page_lang": "en",
            "warc_path": "file.warc.gz",
            "warc_record_id": "<urn:uuid:1>",
            "warc_offset": 0,
            "source": "warc",
        }
        row.update({k: v[i] for k, v in extra.items()})
        rows.append(row)
    schema = pa.schema([f.with_nullable(True) for f in PAIR_SCHEMA])  # tests may pass nulls
    table = pa.Table.from_pylist(rows, schema=schema)
    for name, values in extra.items():  # columns beyond the pair schema (recipe, language, ...)
        if name not in schema.names:
            table = table.append_column(name, pa.array(values))
    return table
