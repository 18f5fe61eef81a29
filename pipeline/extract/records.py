"""One WARC file's response records -> page rows (pairs and one document each), with every
record accounted for: kept, or dropped with a reason. Nothing here raises on bad input."""

from urllib.parse import urlsplit

import fsspec
import pyarrow as pa
from fastwarc.warc import WarcRecordType

from vlcurate.pipeline.extract.config import ExtractConfig
from vlcurate.pipeline.extract.page import _dom, extract_page, extract_page_compiled, md5
from vlcurate.pipeline.extract.payload import decode_content, decode_html, html_verdict
from vlcurate.pipeline.extract.urls import _urls
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
    PARSE_ERROR,
    SOURCE_WARC,
    TRUNCATED_RECORD,
)


def _page_url(target: str | None) -> str | None:
    if not target:
        return None
    url = target.strip().removeprefix("<").removesuffix(">")  # WARC 1.0 drafts used <...>
    if _urls is not None and "[" not in url and _urls.plain_url(url, len(url)) is not None:
        return url  # http(s) with a plain host name: what urlsplit would accept, in C
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme in ("http", "https") and parts.hostname else None


OTHER = object()  # a read function's reason for a record that is not a unit of the stage


def extract_warc(warc_url: str, config: ExtractConfig, stats: StageStats):
    """Yield ``(pair_rows, doc_row)`` for every HTML page of one WARC file.

    Every response record is counted in ``stats`` as kept or dropped with a reason; the file
    itself is counted in ``stats.tally("files")``. Nothing raises on bad input.
    """

    def read(record, offset: int):
        if record.record_type != WarcRecordType.response:
            return OTHER, None, False
        return _read_page(record, offset, warc_url, config, stats)

    yield from read_units(warc_url, stats, read)


def read_units(url: str, stats: StageStats, read):
    """Yield what ``read(record, offset)`` keeps of each record of one WARC-format file.

    ``read`` returns ``(reason, unit, truncated)``: reason ``None`` keeps the unit, ``OTHER``
    counts the record in ``other_records``, anything else drops it. The file is counted in
    ``stats.tally("files")``, its damage in ``files_damaged`` and ``resyncs``.
    """
    files = stats.tally("files")
    stats.tally("images")  # present (and zero) even when no page is kept
    seen, damaged, resyncs = 0, False, 0
    try:
        with fsspec.open(url, "rb") as stream:  # one open: on an object store, one HEAD
            if stream.seek(0, 2) == 0:
                files.drop(FILE_EMPTY)
                return
            records = WarcRecords(stream)
            for offset, record in records:
                seen += 1
                reason, unit, truncated = read(record, offset)
                if truncated:
                    damaged = True
                    records.damaged(offset)  # its Content-Length may have swallowed the rest
                if reason is OTHER:
                    stats.extra["other_records"] += 1
                elif reason:
                    stats.main.drop(reason)
                else:
                    stats.main.keep()
                    yield unit
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


def read_body(record, config: ExtractConfig):
    """A record's block, capped: ``(reason, raw, truncated)``, the reason ``None`` when read."""
    declared = record.content_length
    if declared > config.max_page_bytes:
        return PAGE_TOO_LARGE, None, False
    raw = record.reader.read()
    truncated = len(raw) < declared
    if truncated and not config.keep_truncated:
        return TRUNCATED_RECORD, None, True
    return None, raw, truncated


def _read_page(record, offset: int, warc_url: str, config: ExtractConfig, stats: StageStats):
    """One response record -> ``(reason, (pair_rows, doc_row), truncated)``; the reason is
    ``None`` for a kept page, and the page ``None`` for a dropped one."""
    headers = record.headers
    page_url = _page_url(headers.get("WARC-Target-URI"))
    if page_url is None:
        return BAD_PAGE_URL, None, False
    http = record.http_headers
    if http is None or http.status_code != 200:
        return HTTP_NOT_200, None, False
    reason, raw, truncated = read_body(record, config)
    if reason:
        return reason, None, truncated
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
        http.get("Content-Type", ""), headers.get("WARC-Identified-Payload-Type", ""), body
    )
    if reason:
        return reason, None, truncated
    # Valid UTF-8 comes back as the body's bytes: lexbor parses them as they are.
    text, codec, source = decode_html(body, record.http_charset, keep_utf8=True)
    if text is None:
        return codec, None, truncated  # the reason
    record_id = record.record_id
    try:
        page, whole = _parse(text, page_url, config, stats, (warc_url, record_id, offset))
    except Exception:
        return PARSE_ERROR, None, truncated
    counter = stats.counters.get("charset_source")
    (stats.counter("charset_source") if counter is None else counter)[source] += 1
    if truncated:
        stats.extra["truncated_kept"] += 1
    return None, _rows(page, whole, page_url, codec, record_id, offset, warc_url, stats), truncated


def _parse(text, page_url: str, config: ExtractConfig, stats: StageStats, provenance: tuple):
    """``(page, whole)``: the compiled pass, whose pairs are whole rows (``whole``), or the
    Python path where it is off, not built, or declines the page.
    ``stats.tally("compiled_pass")`` counts each parsed page as kept (compiled) or dropped with
    the reason it went to the Python path."""
    limits = (config.max_alt_chars, config.max_url_length)
    if not config.compiled:
        return extract_page(text, page_url, *limits), False
    tally = stats.tallies.get("compiled_pass") or stats.tally("compiled_pass")
    if _dom is None:
        reason = "not_built"
    else:
        data = text if isinstance(text, bytes) else text.encode("utf-8", "ignore")
        try:
            page = extract_page_compiled(data, page_url, *limits, (SOURCE_WARC, *provenance))
            tally.keep()
            return page, True
        except _dom.Refused as refused:
            reason = refused.args[0]
        except Exception as error:  # MemoryError, or a bug: the Python path still has a go
            reason = f"error_{type(error).__name__}"
    tally.drop(reason)
    return extract_page(text, page_url, *limits), False


def _rows(page, whole: bool, page_url, codec, record_id, offset: int, warc_url: str, stats):
    """A parsed page -> ``(pair_rows, doc_row)`` with provenance; its images counted. The
    pairs of the compiled pass are ``whole`` rows already."""
    images = stats.tallies.get("images") or stats.tally("images")
    images.kept += len(page.pairs)
    images.seen += page.images_seen
    if page.image_drops:
        images.dropped.update(page.image_drops)
    if not whole and page.pairs:
        common = {
            "page_url": page_url,
            "page_lang": page.lang,
            "source": SOURCE_WARC,
            "warc_path": warc_url,
            "warc_record_id": record_id,
            "warc_offset": offset,
        }
        for pair in page.pairs:
            pair.update(common)
    doc = {
        "doc_id": md5(record_id.encode()).hexdigest(),
        "page_url": page_url,
        "title": page.title,
        "page_lang": page.lang,
        "charset": codec,
        "nodes": page.nodes,
        "warc_path": warc_url,
        "warc_record_id": record_id,
        "warc_offset": offset,
    }
    return page.pairs, doc


def docs_table(doc_rows: list[dict]) -> pa.Table:
    """Documents whose ``nodes`` are ``(type, text, url, alt)`` tuples, as a DOC_SCHEMA table.

    The nested column is built from the tuples and offsets: a dict per node and
    ``Table.from_pylist`` cost more than the HTML parse on node-heavy pages.
    """
    offsets, flat = [0], []
    for doc in doc_rows:
        flat.extend(doc["nodes"])
        offsets.append(len(flat))
    node_type = DOC_SCHEMA.field("nodes").type.value_type
    nodes = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(flat, node_type))
    columns = [
        nodes if f.name == "nodes" else pa.array([d[f.name] for d in doc_rows], f.type)
        for f in DOC_SCHEMA
    ]
    return pa.Table.from_arrays(columns, schema=DOC_SCHEMA)
