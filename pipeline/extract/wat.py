"""One Common Crawl WAT file -> image-alt-text pair rows, with every record accounted for.

A WAT file is a WARC file whose ``metadata`` records each hold a JSON "Envelope" describing
one record of the original WARC. The unit here is one metadata record describing a
``response``: kept (a status-200 HTML page; zero or more pairs) or dropped with a reason.
Metadata of request and metadata records, warcinfo and anything else are ``other_records``.

Choices (WAT holds less than the page itself):

- ``page_lang`` is always ``None``: WAT keeps no ``<html lang>``, and a ``content-language``
  meta is a different, weaker signal that would mix into language filters unannounced.
- ``width`` / ``height`` are ``None``; ``position`` counts the page's ``IMG@/src`` links.
- A metadata body that is cut short, above ``max_page_bytes``, not JSON or without an
  Envelope cannot say what it describes; it is still a unit (``truncated_record``,
  ``page_too_large``, ``bad_json``), so damage never hides in ``other_records``.
- ``not_html``: an HTML Content-Type passes; a missing or generic one (or a crawler-identified
  HTML payload) passes when the WAT parsed the page as HTML (``HTML-Metadata`` present).
- ``warc_record_id`` is the described response's id (Envelope, else ``WARC-Refers-To``).
"""

import json
from collections import Counter

from fastwarc.warc import WarcRecordType

from vlcurate.pipeline.extract.page import clean_text, pair_uid
from vlcurate.pipeline.extract.payload import GENERIC_TYPES, HTML_TYPES
from vlcurate.pipeline.extract.records import OTHER, _page_url, read_body, read_units
from vlcurate.pipeline.extract.urls import base_url, resolve
from vlcurate.pipeline.stats import StageStats
from vlcurate.schemas.extract import (
    BAD_JSON,
    BAD_PAGE_URL,
    HTTP_NOT_200,
    IMAGE_NO_ALT,
    IMAGE_NO_URL,
    NOT_HTML,
    SOURCE_WAT,
)

# orjson parses the Envelopes about twice as fast; what it refuses (NaN, lone surrogates, UTF-16)
# json decides, so the verdicts are json's. (It reads integers past 64 bits as floats: no field
# read here is a number whose value matters, only whether it is a string, "200" or truthy.)
try:
    import orjson

    def _loads(raw: bytes):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            return json.loads(raw)

except ImportError:  # pragma: no cover - orjson is a dependency; json gives the same result
    _loads = json.loads

_IMG = "IMG@/src"


def is_wat(path: str) -> bool:
    """True for a WAT file name: ``*.warc.wat.gz``, ``*.wat.gz`` or ``*.wat``."""
    return path.lower().endswith((".wat.gz", ".wat"))


def extract_wat(wat_url: str, config, stats: StageStats):
    """Yield the pair rows (a list, possibly empty) of every kept page of one WAT file.

    Every response-metadata record is counted in ``stats`` as kept or dropped with a reason;
    the file in ``stats.tally("files")``, images in ``stats.tally("images")``. Nothing raises
    on bad input.
    """

    def read(record, offset: int):
        if record.record_type != WarcRecordType.metadata:
            return OTHER, None, False
        return _read_record(record, offset, wat_url, config, stats)

    yield from read_units(wat_url, stats, read)


def _json_type(record) -> bool:
    content_type = record.headers.get("Content-Type") or ""
    return not content_type or "json" in content_type.lower()


def _read_record(record, offset: int, wat_url: str, config, stats: StageStats):
    """One metadata record -> ``(reason, pair_rows, truncated)``; reason ``None`` when kept,
    ``OTHER`` when it describes no response or is not JSON by its Content-Type.

    The Content-Type is asked only before a verdict other than ``OTHER`` (a header lookup
    costs as much as a small JSON parse, and two records in three describe no response);
    a record that is not JSON still ends as ``OTHER`` with no damage reported, as if the
    Content-Type had been asked first.
    """
    reason, raw, truncated = read_body(record, config)
    if reason:
        return (reason, None, truncated) if _json_type(record) else (OTHER, None, False)
    try:
        envelope = _loads(raw)["Envelope"]
        warc = envelope["WARC-Header-Metadata"]
        kind = warc.get("WARC-Type")
    except Exception:  # ValueError (incl. bad UTF-8), KeyError, TypeError, RecursionError
        return (BAD_JSON, None, truncated) if _json_type(record) else (OTHER, None, False)
    if kind != "response" or not _json_type(record):
        return OTHER, None, truncated and _json_type(record)
    try:
        reason, rows = _response(envelope, warc, record, offset, wat_url, config, stats)
    except (AttributeError, KeyError, TypeError, ValueError):  # an Envelope of the wrong shape
        return BAD_JSON, None, truncated
    return reason, rows, truncated


def _response(envelope: dict, warc: dict, record, offset: int, wat_url: str, config, stats):
    """A response's Envelope -> ``(reason, pair_rows)``; images counted only when kept."""
    page_url = _page_url(
        _text(warc.get("WARC-Target-URI")) or record.headers.get("WARC-Target-URI")
    )
    if page_url is None:
        return BAD_PAGE_URL, None
    http = (envelope.get("Payload-Metadata") or {}).get("HTTP-Response-Metadata") or {}
    status = (http.get("Response-Message") or {}).get("Status")
    if str(status).strip() != "200":
        return HTTP_NOT_200, None
    html = http.get("HTML-Metadata")
    identified = _text(warc.get("WARC-Identified-Payload-Type"))
    if not _is_html(_header(http.get("Headers"), "content-type"), identified, html is not None):
        return NOT_HTML, None
    html = html or {}
    base = base_url(page_url, _text((html.get("Head") or {}).get("Base")) or None)
    record_id = _text(warc.get("WARC-Record-ID")) or record.headers.get("WARC-Refers-To")
    provenance = {
        "page_url": page_url,
        "page_lang": None,
        "warc_path": wat_url,
        "warc_record_id": record_id or record.record_id,
        "warc_offset": offset,
        "source": SOURCE_WAT,
        "width": None,
        "height": None,
    }
    pairs, drops, seen = _link_pairs(html.get("Links") or (), base, config, provenance)
    tally = stats.tally("images")
    tally.kept += len(pairs)
    tally.seen += seen
    tally.dropped.update(drops)
    return None, pairs


def _link_pairs(links, base: str, config, provenance: dict):
    """The ``IMG@/src`` links of a page -> ``(pair rows, drop reasons, images seen)``.

    :func:`page._pairs` for a WAT, whose images have nothing but a URL and an alt text: no
    srcset or lazy-loading attribute, no width or height. So the URL is ``src`` resolved (what
    ``image_url`` gives for ``{"src": url}``), without the per-image attribute dict.
    ``provenance`` holds the page's columns, ``width`` and ``height`` (None) among them.
    """
    pairs, drops, position = [], Counter(), -1
    max_alt, max_url = config.max_alt_chars, config.max_url_length
    for link in links:
        if link.get("path") != _IMG:
            continue
        position += 1
        src = link.get("url")
        url, reason = resolve(base, src, max_url) if src and isinstance(src, str) else (None, None)
        alt = url and clean_text(_text(link.get("alt")), max_alt)
        if alt:
            row = {"uid": pair_uid(alt, url), "url": url, "caption": alt, "position": position}
            row.update(provenance)  # with width and height None: a WAT has no <img width>
            pairs.append(row)
        else:
            drops[IMAGE_NO_ALT if url else reason or IMAGE_NO_URL] += 1
    return pairs, drops, position + 1


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def _header(headers, name: str) -> str:
    """A header of the Envelope's ``Headers`` object, case-insensitively ("" if absent)."""
    if not isinstance(headers, dict):
        return ""
    value = headers.get("Content-Type") if name == "content-type" else None
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), "")
    if isinstance(value, list):
        value = value[0] if value else ""
    return _text(value)


def _is_html(content_type: str, identified: str, parsed_as_html: bool) -> bool:
    """:func:`payload.html_verdict` for a WAT: the WAT's own HTML parse stands in for sniffing."""
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime in HTML_TYPES:
        return True
    identified = identified.split(";", 1)[0].strip().lower()
    return (mime in GENERIC_TYPES or identified in HTML_TYPES) and parsed_as_html
