"""The extract stage as plain Python: one WARC file in, pair rows and document rows out.

``extract_warc`` is a generator over one file; ``extract_file_to`` is the per-task unit of
work that the Spark job maps over input files. It writes ``pairs/NAME.parquet``,
``docs/NAME.parquet`` and, last, the done marker ``_stats/NAME.json``, each under a temporary
name first. A rerun skips files whose marker exists, so a killed job resumes where it stopped.
"""

import hashlib
import json
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import fsspec
import pyarrow as pa
from fastwarc.warc import WarcRecordType

from vlcurate.pipeline import storage
from vlcurate.pipeline.extract.page import extract_page
from vlcurate.pipeline.extract.payload import decode_content, decode_html, html_verdict
from vlcurate.pipeline.extract.warc import WarcRecords
from vlcurate.pipeline.stats import StageStats
from vlcurate.schemas.extract import (
    BAD_PAGE_URL,
    DOC_SCHEMA,
    EMPTY_BODY,
    FILE_EMPTY,
    FILE_NOT_WARC,
    FILE_UNREADABLE,
    HTTP_NOT_200,
    PAGE_TOO_LARGE,
    PAIR_SCHEMA,
    PARSE_ERROR,
    SCHEMA_VERSION,
    TRUNCATED_RECORD,
)

STAGE = "extract"


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
    rows_per_group: int = field(
        default=2000, metadata={"help": "documents per parquet row group (bounds task memory)"}
    )


def shard_name(warc_url: str) -> str:
    """A deterministic output name for an input file: its stem plus a hash of the full URL."""
    stem = re.sub(r"\.warc(\.gz|\.zst|\.lz4)?$|\.gz$", "", warc_url.rsplit("/", 1)[-1])
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", stem)[:100]
    return f"{stem}-{hashlib.md5(warc_url.encode()).hexdigest()[:8]}"


def _page_url(target: str | None) -> str | None:
    if not target:
        return None
    url = target.strip().removeprefix("<").removesuffix(">")  # WARC 1.0 drafts used <...>
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme in ("http", "https") and parts.hostname else None


def extract_warc(warc_url: str, config: ExtractConfig, stats: StageStats):
    """Yield ``(pair_rows, doc_row)`` for every HTML page of one WARC file.

    Every response record is counted in ``stats`` as kept or dropped with a reason; the file
    itself is counted in ``stats.tally("files")``. Nothing raises on bad input.
    """
    files = stats.tally("files")
    stats.tally("images")  # present (and zero) even when no page is kept
    seen, damaged, resyncs = 0, False, 0
    try:
        fs, path = fsspec.core.url_to_fs(warc_url)
        if fs.size(path) == 0:
            files.drop(FILE_EMPTY)
            return
        records = WarcRecords(fs, path)
        for offset, record in records:
            seen += 1
            if record.record_type != WarcRecordType.response:
                stats.extra["other_records"] += 1
                continue
            reason, page, truncated = _read_page(record, offset, warc_url, config, stats)
            if truncated:
                damaged = True
                records.damaged(offset)  # its Content-Length may have swallowed what follows
            if reason:
                stats.main.drop(reason)
                continue
            stats.main.keep()
            yield page
        resyncs = records.resyncs
    except OSError:  # the filesystem failed: before any record, or part-way through
        if seen == 0:
            files.drop(FILE_UNREADABLE)
            return
        damaged = True
    if seen == 0:
        files.drop(FILE_NOT_WARC)
        return
    files.keep()
    stats.extra["files_damaged"] += damaged or resyncs > 0
    stats.extra["resyncs"] += resyncs


def _read_page(record, offset: int, warc_url: str, config: ExtractConfig, stats: StageStats):
    """One response record -> ``(reason, (pair_rows, doc_row), truncated)``; the reason is
    ``None`` for a kept page, and the page ``None`` for a dropped one."""
    page_url = _page_url(record.headers.get("WARC-Target-URI"))
    if page_url is None:
        return BAD_PAGE_URL, None, False
    http = record.http_headers
    if http is None or http.status_code != 200:
        return HTTP_NOT_200, None, False
    declared = record.content_length
    if declared > config.max_page_bytes:
        return PAGE_TOO_LARGE, None, False
    raw = record.reader.read()
    truncated = len(raw) < declared
    if truncated and not config.keep_truncated:
        return TRUNCATED_RECORD, None, True
    if not raw:
        return EMPTY_BODY, None, truncated
    body, reason = decode_content(
        raw,
        http.get("Transfer-Encoding", ""),
        http.get("Content-Encoding", ""),
        config.max_page_bytes,
    )
    if reason:
        return reason, None, truncated
    if len(body) > config.max_page_bytes:
        return PAGE_TOO_LARGE, None, truncated
    if not body:
        return EMPTY_BODY, None, truncated
    reason = html_verdict(
        http.get("Content-Type", ""), record.headers.get("WARC-Identified-Payload-Type", ""), body
    )
    if reason:
        return reason, None, truncated
    text, codec, source = decode_html(body, record.http_charset)
    if text is None:
        return codec, None, truncated  # the reason
    if codec == "utf-8" and source != "bom":
        text = body  # valid UTF-8: lexbor parses the bytes as they are, without re-encoding
    try:
        page = extract_page(text, page_url, config.max_alt_chars, config.max_url_length)
    except Exception:
        return PARSE_ERROR, None, truncated
    stats.counter("charset_source")[source] += 1
    images = stats.tally("images")
    images.kept += len(page.pairs)
    images.seen += page.images_seen
    images.dropped.update(page.image_drops)
    record_id = record.record_id
    provenance = {
        "warc_path": warc_url,
        "warc_record_id": record_id,
        "warc_offset": offset,
    }
    for pair in page.pairs:
        pair.update(page_url=page_url, page_lang=page.lang, **provenance)
    doc = {
        "doc_id": hashlib.md5(record_id.encode()).hexdigest(),
        "page_url": page_url,
        "title": page.title,
        "page_lang": page.lang,
        "charset": codec,
        "nodes": page.nodes,
        **provenance,
    }
    if truncated:
        stats.extra["truncated_kept"] += 1
    return None, (page.pairs, doc), truncated


def extract_file_to(warc_url: str, output: str, config: ExtractConfig | None = None) -> dict:
    """Extract one WARC file into ``output``; return its stats dict. Skips finished files."""
    config = config or ExtractConfig()
    name = shard_name(warc_url)
    marker = storage.join(output, "_stats", f"{name}.json")
    if storage.exists(marker):
        return {**json.loads(storage.read_text(marker)), "_resumed": True}
    stats = StageStats(STAGE)
    pairs_url = storage.join(output, "pairs", f"{name}.parquet")
    docs_url = storage.join(output, "docs", f"{name}.parquet")
    with (
        storage.parquet_writer(pairs_url, PAIR_SCHEMA) as pairs_out,
        storage.parquet_writer(docs_url, DOC_SCHEMA) as docs_out,
    ):
        pair_rows, doc_rows = [], []
        for pairs, doc in extract_warc(warc_url, config, stats):
            pair_rows.extend(pairs)
            doc_rows.append(doc)
            if len(doc_rows) >= config.rows_per_group:
                _flush(pairs_out, docs_out, pair_rows, doc_rows)
        _flush(pairs_out, docs_out, pair_rows, doc_rows)
    stats.extra["pairs"] += stats.tally("images").kept
    stats.extra["docs"] += stats.main.kept
    result = stats.to_dict(warc_path=warc_url, shard=name, schema_version=SCHEMA_VERSION)
    storage.write_text_atomic(marker, json.dumps(result, indent=2) + "\n")
    return result


def _flush(pairs_out, docs_out, pair_rows: list[dict], doc_rows: list[dict]) -> None:
    if pair_rows:
        pairs_out.write_table(pa.Table.from_pylist(pair_rows, schema=PAIR_SCHEMA))
        pair_rows.clear()
    if doc_rows:
        docs_out.write_table(docs_table(doc_rows))
        doc_rows.clear()


def docs_table(doc_rows: list[dict]) -> pa.Table:
    """Documents whose ``nodes`` are ``(type, text, url, alt)`` tuples, as a DOC_SCHEMA table.

    The nested column is built from flat columns and offsets: a dict per node and
    ``Table.from_pylist`` cost more than the HTML parse on node-heavy pages.
    """
    offsets, flat = [0], []
    for doc in doc_rows:
        flat.extend(doc["nodes"])
        offsets.append(len(flat))
    node_type = DOC_SCHEMA.field("nodes").type.value_type
    node_columns = zip(*flat, strict=True) if flat else ((), (), (), ())
    nodes = pa.ListArray.from_arrays(
        pa.array(offsets, pa.int32()),
        pa.StructArray.from_arrays(
            [pa.array(col, pa.string()) for col in node_columns], fields=list(node_type)
        ),
    )
    columns = [
        nodes if f.name == "nodes" else pa.array([d[f.name] for d in doc_rows], f.type)
        for f in DOC_SCHEMA
    ]
    return pa.Table.from_arrays(columns, schema=DOC_SCHEMA)
