"""Records written by the extract stage (``OUTPUT/pairs/`` and ``OUTPUT/docs/``).

Accounting unit: one WARC ``response`` record. Every response record read is either *kept*
(it was a status-200 HTML page and produced one row in ``docs/`` plus zero or more rows in
``pairs/``) or *dropped* with exactly one of the reasons below, so that
``in == kept + sum(dropped.values())`` always holds in ``stats.json``.

Records of other WARC types (request, metadata, warcinfo, revisit, ...) are not units of this
stage; they are counted only as the extra field ``other_records``.

For a Common Crawl WAT file (``*.warc.wat.gz``, ``*.wat.gz``: WARC ``metadata`` records holding
a JSON ``Envelope`` that describes one record of the original WARC) the unit is one metadata
record describing a ``response``. It is kept (a status-200 HTML page: zero or more rows in
``pairs/``, with ``source = "wat"``, and no document: a WAT holds no page text) or dropped with
one of the reasons below; :data:`WAT_REASONS` are those a WAT record can get. A metadata body
that cannot say what it describes (cut short, too large, not JSON) is still a unit, so damage
never hides in ``other_records``; metadata of requests, of metadata records and warcinfo are
``other_records``.

Whole files are accounted separately under ``files`` (unit: one input path), with the same
identity: ``files.in == files.read + sum(files.failed.values())``. A file that fails *after*
some records were read (a truncated gzip member, garbage that cannot be resynchronised) counts
as read, and its damage is in ``files.damaged``.

Images and links found on kept pages are also accounted for, in ``images``: every ``<img>`` /
``<picture><source>`` element seen on a kept page (for a WAT: every ``IMG@/src`` link) either
becomes a pair or is dropped with one of the ``IMAGE_*`` reasons.
"""

import pyarrow as pa

SCHEMA_VERSION = "extract/2"  # 2: pairs gained ``source`` (WAT input)

# --- response-record drop reasons (unit: response record) --------------------------------
HTTP_NOT_200 = "http_status_not_200"  # HTTP status line missing or not 200 (redirects, 404, ...)
NOT_HTML = "not_html"  # Content-Type and body sniffing both say this is not HTML
BINARY_BODY = "binary_body"  # labelled as HTML but the body is binary (image, PDF, NULs, ...)
PAGE_TOO_LARGE = (
    "page_too_large"  # body above ExtractConfig.max_page_bytes (checked before reading)
)
EMPTY_BODY = "empty_body"  # no payload after the HTTP headers
TRUNCATED_RECORD = "truncated_record"  # fewer bytes than the WARC Content-Length declares
CONTENT_ENCODING_ERROR = "content_encoding_error"  # gzip/deflate/br Content-Encoding did not decode
UNDECODABLE_TEXT = "undecodable_text"  # no charset decodes the body without mostly U+FFFD
PARSE_ERROR = "parse_error"  # the HTML parser raised (never seen, but never fatal either)
BAD_PAGE_URL = "bad_page_url"  # WARC-Target-URI missing or not an absolute http(s) URL
BAD_JSON = "bad_json"  # WAT only: the metadata body is not JSON, or has no usable Envelope

RECORD_REASONS = (
    HTTP_NOT_200,
    NOT_HTML,
    BINARY_BODY,
    PAGE_TOO_LARGE,
    EMPTY_BODY,
    TRUNCATED_RECORD,
    CONTENT_ENCODING_ERROR,
    UNDECODABLE_TEXT,
    PARSE_ERROR,
    BAD_PAGE_URL,
    BAD_JSON,
)
# The reasons a WAT metadata record can get (the WAT has no body to decode or parse).
WAT_REASONS = (TRUNCATED_RECORD, PAGE_TOO_LARGE, BAD_JSON, BAD_PAGE_URL, HTTP_NOT_200, NOT_HTML)

# --- file failure reasons (unit: input path) -----------------------------------------------
FILE_EMPTY = "empty_file"  # zero bytes
FILE_NOT_WARC = "not_a_warc"  # no WARC record could be read at all
FILE_UNREADABLE = "unreadable"  # the filesystem raised while opening or reading

FILE_REASONS = (FILE_EMPTY, FILE_NOT_WARC, FILE_UNREADABLE)

# --- image drop reasons (unit: <img> or <picture><source> element on a kept page) ----------
IMAGE_NO_URL = "no_url"  # no src, srcset or lazy-loading attribute
IMAGE_NON_HTTP_URL = "non_http_url"  # data:, javascript:, blob:, ftp:, ... after resolution
IMAGE_BAD_URL = "bad_url"  # unparsable, absurdly long, or with control characters
IMAGE_NO_ALT = "no_alt_text"  # empty or missing alt text: kept in docs/, not a pair

IMAGE_REASONS = (IMAGE_NO_URL, IMAGE_NON_HTTP_URL, IMAGE_BAD_URL, IMAGE_NO_ALT)

SOURCE_WARC, SOURCE_WAT = "warc", "wat"
SOURCES = (SOURCE_WARC, SOURCE_WAT)  # the pairs' ``source`` column: the format of the input file

_PROVENANCE = [
    pa.field("warc_path", pa.string(), nullable=False),
    pa.field("warc_record_id", pa.string(), nullable=False),
    pa.field("warc_offset", pa.int64(), nullable=False),
]

PAIR_SCHEMA = pa.schema(
    [
        pa.field("uid", pa.string(), nullable=False),  # md5(caption + url), as cc2dataset
        pa.field("url", pa.string(), nullable=False),  # absolute http(s) image URL
        pa.field("caption", pa.string(), nullable=False),  # cleaned alt text
        pa.field("page_url", pa.string(), nullable=False),
        pa.field("width", pa.int32()),  # the <img width> attribute, when a number; WAT: null
        pa.field("height", pa.int32()),
        pa.field(
            "position", pa.int32(), nullable=False
        ),  # 0-based order among the page's image elements
        pa.field("page_lang", pa.string()),  # <html lang>, lower-cased; WAT: null
        *_PROVENANCE,
        pa.field("source", pa.string(), nullable=False),  # the input's format: "warc" or "wat"
    ],
    metadata={"schema_version": SCHEMA_VERSION},
)

NODE_TYPE = pa.struct(
    [
        pa.field("type", pa.string(), nullable=False),  # "text" or "image"
        pa.field("text", pa.string()),  # text nodes: one block of text
        pa.field("url", pa.string()),  # image nodes: absolute http(s) URL
        pa.field("alt", pa.string()),  # image nodes: alt text, possibly empty
    ]
)

DOC_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),  # md5(warc_record_id)
        pa.field("page_url", pa.string(), nullable=False),
        pa.field("title", pa.string()),
        pa.field("page_lang", pa.string()),
        pa.field("charset", pa.string(), nullable=False),  # the codec that decoded the page
        pa.field("nodes", pa.list_(NODE_TYPE), nullable=False),  # text and images in page order
        *_PROVENANCE,
    ],
    metadata={"schema_version": SCHEMA_VERSION},
)
