"""Records written by the export stage (``RELEASE/NNNNN.parquet``, one per final shard).

A release is what LAION and DataComp publish: metadata parquet of URLs, captions and scores,
with no images, that anyone re-downloads with img2dataset (``--input_format parquet
--url_col URL --caption_col TEXT``).

Accounting unit: one sample of a final shard (a row of the select stage's
``OUTPUT/final/NNNNN.parquet``). Each is kept, as one row of the release, or dropped with the
reason below. ``in == kept + sum(dropped.values())`` in ``stats.json``.

Columns of the ``laion`` format, as LAION-5B's parquet names them (``URL`` ... ``pwatermark``,
``hash``, ``LANGUAGE``), then DataComp's ``uid`` and the page the image was found on:

- ``WIDTH``/``HEIGHT``: the original image's size (before the download resized it), as LAION's;
- ``similarity``: the CLIP image-text cosine of the model the score stage ran (the file's
  schema metadata names it, ``clip_model``, and the NSFW and watermark scorers);
- ``hash``: LAION's join key: the first signed 64-bit half of MurmurHash3 x64 128 (seed 0) of
  the UTF-8 bytes of ``URL + TEXT`` (a null counted as ""), what ``mmh3.hash64(url + text)[0]``
  gives and what LAION's punsafe and pwatermark files are joined on;
- ``uid``: the project's uid, ``md5(caption + url)`` in hex (cc2dataset's, 128 bits as
  DataComp's ``uid``; ``uids.npy`` of the final output lists the same values).
"""

import pyarrow as pa

SCHEMA_VERSION = "export/1"

FORMAT_LAION = "laion"
FORMATS = (FORMAT_LAION,)

# --- drop reasons (unit: one sample of a final shard) -----------------------------------------
NO_URL = "no_url"  # the sample has no image URL: nobody could download it again

LAION_SCHEMA = pa.schema(
    [
        pa.field("URL", pa.string(), nullable=False),
        pa.field("TEXT", pa.string()),
        pa.field("WIDTH", pa.int64()),
        pa.field("HEIGHT", pa.int64()),
        pa.field("similarity", pa.float64()),
        pa.field("punsafe", pa.float32()),
        pa.field("pwatermark", pa.float32()),
        pa.field("hash", pa.int64(), nullable=False),
        pa.field("uid", pa.string()),
        pa.field("LANGUAGE", pa.string()),  # ISO 639 code of the caption, as the filter found
        pa.field("page_url", pa.string()),  # the page the image was found on
    ],
    metadata={"schema_version": SCHEMA_VERSION, "format": FORMAT_LAION},
)
