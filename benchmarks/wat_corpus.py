"""Row (g) of ``extract.py``: a Common Crawl-like WAT corpus made from the benchmark's pages.

For every page a WAT has three metadata records, as Common Crawl's do (one per record of the
original WARC): the request's, the response's and that of the crawler's own ``metadata``
record. The response's Envelope carries the page's status, HTTP headers and ``HTML-Metadata``
(``Head``: title, ``<base>``, metas, ``<link>``s and scripts; ``Links``: every ``<a href>`` and
``<img src>`` in page order, with anchor text and alt text), read with selectolax. Each record is
one gzip member with a fresh record id. The corpus is cached under ``benchmarks/_work/``.
"""

import gzip
import hashlib
import json
import shutil
import time
import uuid
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser

WARC_DATE = "2024-04-25T00:00:00Z"


def envelopes(page) -> tuple[dict, dict, dict]:
    """The request, response and metadata Envelopes of one page (``extract.Page``)."""
    host = page.url.split("/", 3)[2]
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in page.headers}
    request = {
        "Actual-Content-Type": "application/http; msgtype=request",
        "HTTP-Request-Metadata": {
            "Request-Message": {"Method": "GET", "Path": "/", "Version": "HTTP/1.1"},
            "Headers": {"User-Agent": "CCBot/2.0 (https://commoncrawl.org/faq/)", "Host": host},
            "Entity-Length": "0",
        },
    }
    status = page.status_line.decode("latin-1").split(" ", 2)
    response = {
        "Actual-Content-Type": "application/http; msgtype=response",
        "HTTP-Response-Metadata": {
            "Response-Message": {"Version": status[0], "Status": status[1], "Reason": status[-1]},
            "Headers-Length": str(sum(len(k) + len(v) + 4 for k, v in page.headers)),
            "Headers": headers,
            "Entity-Length": str(len(page.body)),
            "Entity-Digest": "sha1:" + hashlib.sha1(page.body).hexdigest().upper(),
            "HTML-Metadata": html_metadata(page.body),
        },
    }
    metadata = {
        "Actual-Content-Type": "application/warc-fields",
        "WARC-Metadata-Metadata": {
            "Metadata-Records": [
                {"Name": "fetchTimeMs", "Value": "412"},
                {"Name": "charset-detected", "Value": "UTF-8"},
                {"Name": "languages-cld2", "Value": '{"reliable":true,"languages":[]}'},
            ]
        },
    }
    return request, response, metadata


def html_metadata(body: bytes) -> dict:
    """``HTML-Metadata`` as Common Crawl's WAT writer gives it, for the parts it keeps."""
    tree = LexborHTMLParser(body)
    head: dict = {}
    title = tree.css_first("title")
    if title is not None:
        head["Title"] = title.text()
    base = tree.css_first("base[href]")
    if base is not None:
        head["Base"] = base.attributes.get("href")
    head["Metas"] = [_present(node.attributes) for node in tree.css("meta")]
    head["Link"] = [
        _link(node, "LINK@/href", "href", rel=node.attributes.get("rel"))
        for node in tree.css("link[href]")
    ]
    head["Scripts"] = [_link(node, "SCRIPT@/src", "src") for node in tree.css("script[src]")]
    links = [
        _link(node, "IMG@/src", "src", alt=node.attributes.get("alt"))
        if node.tag == "img"
        else _link(node, "A@/href", "href", text=node.text().strip())
        for node in tree.css("a[href], img[src]")  # in page order
    ]
    return {"Head": head, "Links": links}


def _link(node, path: str, attribute: str, **more) -> dict:
    """One link as the WAT writes it: its path, its raw (unresolved) URL and what else it has."""
    return _present({"path": path, "url": node.attributes.get(attribute), **more})


def _present(fields: dict) -> dict:
    return {k: v for k, v in fields.items() if v is not None}


def wat_records(page, payloads: tuple[dict, dict, dict]) -> list[bytes]:
    """The three WAT records (request, response, metadata metadata) of one page, given its
    :func:`envelopes`, each with a fresh record id."""
    records = []
    for kind, payload in zip(("request", "response", "metadata"), payloads, strict=True):
        warc = {
            "WARC-Type": kind,
            "WARC-Date": WARC_DATE,
            "WARC-Record-ID": f"<urn:uuid:{uuid.uuid4()}>",
            "WARC-Target-URI": page.url,
        }
        if kind == "response":
            warc["WARC-Identified-Payload-Type"] = "text/html"
        body = {
            "Container": {"Filename": "benchmark.warc.gz", "Compressed": True, "Offset": "0"},
            "Envelope": {
                "Payload-Metadata": payload,
                "Format": "WARC/1.0",
                "WARC-Header-Metadata": warc,
            },
        }
        records.append(_metadata_record(page.url, warc["WARC-Record-ID"], body))
    return records


def _metadata_record(url: str, refers_to: str, body: dict) -> bytes:
    block = json.dumps(body, separators=(",", ":")).encode()
    head = (
        f"WARC/1.0\r\nWARC-Type: metadata\r\nWARC-Target-URI: {url}\r\nWARC-Date: {WARC_DATE}\r\n"
        f"WARC-Record-ID: <urn:uuid:{uuid.uuid4()}>\r\nWARC-Refers-To: {refers_to}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(block)}\r\n\r\n"
    )
    return head.encode() + block + b"\r\n\r\n"


def build(pages: list, responses: int, parts: int, folder: Path, fingerprint: str) -> list[str]:
    """``parts`` ``.warc.wat.gz`` files holding ``responses`` pages' WAT records in all (three
    each, plus a warcinfo a file), cycling through ``pages``; cached in ``folder``."""
    key = {"responses": responses, "parts": parts, "sources": fingerprint}
    names = [f"part-{i:04d}.warc.wat.gz" for i in range(parts)]
    manifest_path = folder / "manifest.json"
    if manifest_path.exists() and json.loads(manifest_path.read_text()) == key:
        if all((folder / name).is_file() for name in names):
            return [str(folder / name) for name in names]
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    payloads = [envelopes(page) for page in pages]  # parsed once a distinct page
    outputs = [open(folder / name, "wb") for name in names]
    try:
        for out in outputs:
            info = b"WARC/1.0\r\nWARC-Type: warcinfo\r\nContent-Length: 0\r\n\r\n\r\n\r\n"
            out.write(gzip.compress(info, mtime=0))
        for i in range(responses):
            page = i % len(pages)
            for record in wat_records(pages[page], payloads[page]):
                outputs[i % parts].write(gzip.compress(record, compresslevel=6, mtime=0))
    finally:
        for out in outputs:
            out.close()
    manifest_path.write_text(json.dumps(key) + "\n")
    return [str(folder / name) for name in names]


def measure(parts: list[str], output: str, extract_file_to) -> tuple[int, int, float, float]:
    """``extract_file_to`` over every WAT part, one after the other, in this process:
    ``(response records, all WAT records, wall seconds, cpu seconds)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    stats = [extract_file_to(path, output) for path in parts]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    responses = sum(s["in"] for s in stats)
    return responses, responses + sum(s["other_records"] for s in stats), wall, cpu


def measure_floor(parts: list[str]) -> tuple[int, float, float]:
    """The floor of any WAT reader: fastwarc reads and gunzips every record and the JSON of
    each metadata record is parsed (orjson, as the pipeline does), nothing else:
    ``(records, wall, cpu)``."""
    import orjson
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    records = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for path in parts:
        with open(path, "rb") as stream:
            for record in ArchiveIterator(stream, parse_http=False):
                body = record.reader.read()
                if record.record_type == WarcRecordType.metadata:
                    orjson.loads(body)
                records += 1
    return records, time.perf_counter() - wall, time.process_time() - cpu
