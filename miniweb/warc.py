"""The mini web's crawl as a WARC/1.0 file, gzip-compressed one record at a time (as Common
Crawl does). Records are built by hand so that every byte is deterministic: the WARC-Date is
fixed, record ids are derived from the seed and port, gzip headers carry no timestamp.

Layout: one ``warcinfo`` record; for every page a ``request`` and its ``response``; then
``/robots.txt`` (text/plain) and a ``404`` for a missing page, which the extractor counts as
``not_html`` and ``http_status_not_200``.
"""

import base64
import gzip
import hashlib
import os
import uuid
from pathlib import Path

WARC_DATE = "2024-05-20T10:00:00Z"
HTTP_DATE = "Mon, 20 May 2024 10:00:00 GMT"
USER_AGENT = "vlcurate-miniweb-crawler/1.0"


def block_digest(data: bytes) -> str:
    """A WARC digest: ``sha1:`` and the base32 SHA-1, as Common Crawl writes them."""
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode()


class _Writer:
    def __init__(self, seed: int, port: int):
        self.seed, self.port, self.count = seed, port, 0
        self.chunks: list[bytes] = []

    def record_id(self) -> str:
        digest = hashlib.sha256(f"miniweb/{self.seed}/{self.port}/{self.count}".encode()).digest()
        self.count += 1
        return f"<urn:uuid:{uuid.UUID(bytes=digest[:16], version=4)}>"

    def add(self, fields: list[tuple[str, str]], block: bytes) -> str:
        record_id = self.record_id()
        head = [("WARC-Type", fields[0][1]), ("WARC-Date", WARC_DATE)]
        head += [("WARC-Record-ID", record_id), *fields[1:]]
        head += [("Content-Length", str(len(block)))]
        text = "WARC/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head) + "\r\n"
        self.chunks.append(gzip.compress(text.encode() + block + b"\r\n\r\n", 9, mtime=0))
        return record_id

    def exchange(self, url: str, status: str, content_type: str, body: bytes) -> None:
        """A request record and the response record it got."""
        path = url.split("/", 3)[3] if url.count("/") >= 3 else ""
        host = url.split("/", 3)[2]
        request = (
            f"GET /{path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\n"
            "Accept: text/html,application/xhtml+xml;q=0.9,*/*;q=0.8\r\n\r\n"
        ).encode()
        response = (
            f"HTTP/1.1 {status}\r\nDate: {HTTP_DATE}\r\nServer: miniweb\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        common = [("WARC-Target-URI", url), ("WARC-IP-Address", "127.0.0.1")]
        request_id = self.add(
            [
                ("WARC-Type", "request"),
                *common,
                ("WARC-Block-Digest", block_digest(request)),
                ("Content-Type", "application/http; msgtype=request"),
            ],
            request,
        )
        identified = content_type.split(";")[0]
        self.add(
            [
                ("WARC-Type", "response"),
                *common,
                ("WARC-Concurrent-To", request_id),
                ("WARC-Block-Digest", block_digest(response)),
                ("WARC-Payload-Digest", block_digest(body)),
                ("WARC-Identified-Payload-Type", identified),
                ("Content-Type", "application/http; msgtype=response"),
            ],
            response,
        )


def write_warc(path: str | Path, pages, seed: int, port: int) -> int:
    """Write ``pages`` (``pages.Page``) to ``path``; return the number of records."""
    writer = _Writer(seed, port)
    info = (
        f"software: vlcurate-miniweb\r\nformat: WARC File Format 1.0\r\n"
        f"description: synthetic crawl of http://127.0.0.1:{port}/ (seed {seed})\r\n"
    ).encode()
    writer.add(
        [
            ("WARC-Type", "warcinfo"),
            ("WARC-Filename", Path(path).name),
            ("Content-Type", "application/warc-fields"),
        ],
        info,
    )
    for page in pages:
        writer.exchange(page.url, "200 OK", f"text/html; charset={page.charset}", page.html)
    base = f"http://127.0.0.1:{port}"
    writer.exchange(f"{base}/robots.txt", "200 OK", "text/plain", b"User-agent: *\nAllow: /\n")
    missing = b"<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>\n"
    writer.exchange(f"{base}/pages/missing.html", "404 Not Found", "text/html", missing)
    tmp = Path(f"{path}.tmp-{os.getpid()}")
    tmp.write_bytes(b"".join(writer.chunks))
    tmp.replace(path)
    return writer.count
