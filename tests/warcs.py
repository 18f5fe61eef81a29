"""Build small WARC files by hand, so a test controls every byte (and every defect)."""

import gzip
import uuid


def http_response(
    body: bytes,
    content_type: str | None = "text/html; charset=utf-8",
    status: str = "200 OK",
    headers: dict | None = None,
) -> bytes:
    lines = [f"HTTP/1.1 {status}"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    for key, value in (headers or {}).items():
        lines.append(f"{key}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def warc_record(
    block: bytes,
    url: str = "http://example.com/",
    record_type: str = "response",
    content_length: int | None = None,
    headers: dict | None = None,
) -> bytes:
    """One WARC/1.0 record. ``content_length`` may lie, to make a truncated or overlong one."""
    fields = {
        "WARC-Type": record_type,
        "WARC-Record-ID": f"<urn:uuid:{uuid.uuid4()}>",
        "WARC-Date": "2024-05-20T10:00:00Z",
        "WARC-Target-URI": url,
        "Content-Type": "application/http; msgtype=response",
        **(headers or {}),
        "Content-Length": str(len(block) if content_length is None else content_length),
    }
    head = "WARC/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n"
    return head.encode() + block + b"\r\n\r\n"


def page(body: bytes | str, url: str = "http://example.com/", **http) -> bytes:
    """A response record holding an HTTP 200 page."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    return warc_record(http_response(body, **http), url)


def write_warc(path, records: list[bytes], gzip_members: bool = True) -> str:
    """Write records as one gzip member each (as Common Crawl does), or uncompressed."""
    with open(path, "wb") as f:
        for record in records:
            f.write(gzip.compress(record) if gzip_members else record)
    return str(path)
