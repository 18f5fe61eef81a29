"""A hostile web on loopback for the download tests.

Eight (or ``hosts``) HTTP servers on 127.0.0.16, .17, ... share one port, each with a host name
``host{i}.loopback-web.net`` that the downloader learns from ``web.resolve`` (a pin list in the
manner of curl's --resolve), so per-host politeness can be checked on distinct addresses. Every
request is recorded with its start (request line read) and end (last byte written), so tests assert
on recorded events rather than wall time. A canary listens on 127.0.0.1 (at the web's port and its
own) and on every host address at its own port: any connection reaching it is an SSRF failure.
Linux routes all of 127.0.0.0/8 to ``lo``, so no setup is needed. Endless bodies are written a chunk
at a time from one shared buffer, and every waiting handler wakes when the web closes.
"""

import dataclasses
import errno
import hashlib
import io
import re
import socket
import socketserver
import struct
import sys
import threading
import time
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from PIL import Image

FIRST = 16  # host i lives on 127.0.0.{FIRST + i}
DOMAIN = "loopback-web.net"
HUGE = 10 * 2**30  # the Content-Length /huge announces
SLOW_BODY = 1_000_000  # the Content-Length /slow-body announces
ZEROS = bytes(64 * 1024)
NAME = r"(?P<name>[A-Za-z0-9_-]+)"


@cache
def image_bytes(name: str) -> bytes:
    """A ~2 KB JPEG whose colours derive from ``name``: the same bytes on every call and run."""
    r, g, b = hashlib.sha256(name.encode()).digest()[:3]
    w, h = 96, 72
    pixels = bytes(
        v
        for y in range(h)
        for x in range(w)
        for v in ((r + 2 * x) % 256, (g + 3 * y) % 256, (b + 60 * ((x // 8 + y // 8) % 2)) % 256)
    )
    out = io.BytesIO()
    Image.frombytes("RGB", (w, h), pixels).save(out, "JPEG", quality=85)
    return out.getvalue()


@dataclasses.dataclass
class Request:
    """One request as the web saw it. ``end`` is None while in flight; ``status`` None when
    nothing was answered (/drop, /hang); ``sent`` counts every byte written, headers included."""

    host: int
    host_header: str | None
    path: str  # the request target as sent, query included
    start: float  # time.monotonic() when the request line had been read
    end: float | None = None  # time.monotonic() after the last byte was written
    status: int | None = None
    sent: int = 0
    peer_port: int = 0  # the client's port: equal values mean one kept-alive connection
    method: str = ""


def peak_concurrency(requests: list[Request]) -> int:
    """The most requests in flight at once (one still in flight counts until now)."""
    now = time.monotonic()  # an end (-1) sorts before a start (+1) at the same instant
    events = sorted([(r.start, 1) for r in requests] + [(r.end or now, -1) for r in requests])
    peak = current = 0
    for _, step in events:
        current += step
        peak = max(peak, current)
    return peak


def least_spacing(requests: list[Request]) -> float:
    """The shortest time between two consecutive request starts (inf for fewer than two)."""
    starts = sorted(r.start for r in requests)
    return min((b - a for a, b in pairwise(starts)), default=float("inf"))


class _Counting(io.RawIOBase):
    """The handler's wfile, adding every write to the current record as it happens."""

    def __init__(self, raw):
        self.raw, self.hit = raw, None

    def writable(self):
        return True

    def write(self, data):
        self.raw.write(data)
        if self.hit is not None:
            self.hit.sent += len(data)
        return len(data)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
    timeout = 60  # an idle kept-alive connection is dropped eventually
    routes = [
        (rf"/img/{NAME}\.jpg", "image"),
        (rf"/private/(?:.*/)?{NAME}\.jpg", "image"),
        (r"/robots\.txt", "robots"),
        (r"/slow-body", "slow_body"),
        (r"/slow-headers", "slow_headers"),
        (r"/huge", "huge"),
        (r"/huge-unsized", "huge_unsized"),
        (r"/redirect", "redirect"),
        (r"/redirect-chain/(?P<n>\d+)", "chain"),
        (rf"/(?P<code>429|503)/{NAME}\.jpg", "flaky"),
        (rf"/noai/{NAME}\.jpg", "noai"),
        (r"/status/(?P<code>[2-5]\d\d)", "status"),
        (r"/not-image\.jpg", "not_image"),
        (r"/drop", "drop"),
        (r"/reset", "reset"),
        (r"/hang", "hang"),
    ]

    def setup(self):
        super().setup()
        self.wfile = _Counting(self.wfile)
        self.web, self.hit = self.server.web, None
        self.web._opened(self.connection)

    def finish(self):
        self.web._closed(self.connection)
        super().finish()

    def handle_one_request(self):
        self.hit = self.wfile.hit = None
        try:
            super().handle_one_request()
        finally:
            if self.hit is not None:
                self.hit.end = time.monotonic()

    def parse_request(self):
        self.hit = self.wfile.hit = Request(self.server.index, None, "", time.monotonic())
        self.hit.peer_port = self.client_address[1]
        self.web._record(self.hit)
        ok = super().parse_request()
        self.hit.path, self.hit.method = getattr(self, "path", ""), getattr(self, "command", "")
        if ok:
            self.hit.host_header = self.headers.get("Host")
        return ok

    def send_response_only(self, code, message=None):
        if self.hit is not None:  # None: an over-long request line, refused before parsing
            self.hit.status = code
        super().send_response_only(code, message)

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = urlsplit(self.path).path
        for pattern, name in self.routes:
            match = re.fullmatch(pattern, path)
            if match:
                return getattr(self, name)(**match.groupdict())
        self.answer(404, b"not here\n", "text/plain")

    # -- helpers ---------------------------------------------------------------------------

    def answer(self, code, body=b"", ctype="image/jpeg", headers=(), length=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def drip(self, data, interval):
        """Write ``data`` one byte per ``interval`` s, ending early if the web closes."""
        for i in range(len(data)):
            if self.web._stop.wait(interval if i else 0):
                break
            self.wfile.write(data[i : i + 1])

    def endless(self, chunk, interval=0.0, limit=None):
        """Write ``chunk`` until the client goes (the write fails), the web closes, or
        ``limit`` bytes; one chunk at a time, so nothing is ever held in memory."""
        self.close_connection, left = True, limit
        while not self.web._stop.is_set() and (left is None or left > 0):
            piece = chunk if left is None or left >= len(chunk) else chunk[:left]
            self.wfile.write(piece)
            left = None if left is None else left - len(piece)
            if interval:
                self.web._stop.wait(interval)

    # -- paths -----------------------------------------------------------------------------

    def image(self, name, headers=()):
        if self.web.delay:
            self.web._stop.wait(self.web.delay)
        self.answer(200, image_bytes(name), headers=headers)

    def robots(self):
        rule = self.web._robots.get(self.server.index)
        if rule is None or isinstance(rule, int):
            return self.answer(rule or 404, b"robots\n", "text/plain")
        if rule == "slow":  # headers at once, then "Disallow: /" at one byte a second
            text = b"User-agent: *\nDisallow: /\n"
            self.answer(200, b"", "text/plain", length=len(text))
            return self.drip(text, 1.0)
        self.answer(200, rule.encode(), "text/plain")

    def slow_body(self):
        head = image_bytes("slow-body")
        self.answer(200, head[:1], length=SLOW_BODY)
        self.drip(head[1:], 1.0)
        self.endless(b"\0", interval=1.0)

    def slow_headers(self):
        body = image_bytes("slow-headers")
        self.hit.status = 200
        head = f"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {len(body)}\r\n\r\n"
        self.drip(head.encode(), 0.5)
        if not self.web._stop.is_set():
            self.wfile.write(body)

    def huge(self):
        head = image_bytes("huge")[:-2]  # a real JPEG's start (no end marker), then zeros
        self.answer(200, head, length=HUGE)
        self.endless(ZEROS, limit=HUGE - len(head))

    def huge_unsized(self):
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(image_bytes("huge")[:-2])
        self.endless(ZEROS)

    def redirect(self):
        query = parse_qs(urlsplit(self.path).query)
        if "to" not in query:
            return self.answer(400, b"/redirect?to=URL\n", "text/plain")
        code = int(query.get("code", ["302"])[0])
        self.answer(code, b"moved\n", "text/plain", headers=[("Location", query["to"][0])])

    def chain(self, n):
        if int(n) == 0:
            return self.image("chain")
        location = f"/redirect-chain/{int(n) - 1}"
        self.answer(302, b"moved\n", "text/plain", headers=[("Location", location)])

    def flaky(self, code, name):
        failures = self.web.fail_429 if code == "429" else self.web.fail_503
        if self.web._bump(self.server.index, urlsplit(self.path).path) > failures:
            return self.image(name)
        headers = [("Retry-After", self.web.retry_after)] if code == "429" else []
        self.answer(int(code), b"try later\n", "text/plain", headers=headers)

    def noai(self, name):
        self.image(name, headers=[("X-Robots-Tag", "noai")])

    def status(self, code):
        body = b"" if code in ("204", "304") else f"status {code}\n".encode()
        self.answer(int(code), body, "text/plain")

    def not_image(self):
        self.answer(200, b"<html><body>a web page posing as an image</body></html>\n")

    def drop(self):
        self.close_connection = True  # nothing sent; the client sees the remote close

    def reset(self):
        self.close_connection = True  # an RST: linger 0 and close now
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()
        self.connection.close()

    def hang(self):
        self.close_connection = True
        self.web._stop.wait()


class _Server(ThreadingHTTPServer):
    daemon_threads, block_on_close = True, False  # close() never waits for a hung handler
    request_queue_size = 128  # a burst of connects must not wait for SYN retries

    def __init__(self, address, handler, web, index):
        self.web, self.index = web, index
        super().__init__(address, handler)

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)  # no getfqdn: no reverse lookups
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], OSError):  # a client going is normal
            self.web.errors.append(sys.exc_info()[1])
            super().handle_error(request, client_address)


@dataclasses.dataclass
class CanaryHit:
    """One connection the canary accepted; ``data`` is what the client said first, if anything."""

    address: str
    peer_port: int
    at: float
    data: bytes = b""


class _CanaryHandler(socketserver.BaseRequestHandler):
    def setup(self):
        self.server.web._opened(self.request)

    def finish(self):
        self.server.web._closed(self.request)

    def handle(self):
        hit = self.server.pending.pop(self.client_address)
        self.request.settimeout(2.0)
        try:
            hit.data = self.request.recv(65536)
            if re.match(rb"[A-Z]+ ", hit.data):
                self.request.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 7\r\n\r\ncanary\n")
        except OSError:
            pass


class _Canary(socketserver.ThreadingTCPServer):
    daemon_threads, block_on_close, allow_reuse_address = True, False, True
    request_queue_size = 128

    def __init__(self, address, handler, web, index):
        self.web, self.pending = web, {}
        super().__init__(address, handler)

    def verify_request(self, request, client_address):
        """Record on accept, in the accept loop itself, before any handler thread runs."""
        hit = CanaryHit(self.server_address[0], client_address[1], time.monotonic())
        self.pending[client_address] = hit
        with self.web._lock:
            self.web._canary.append(hit)
        return True


def _bind_all(specs, web, avoid=(), tries=50):
    """A server for each ``(address, server class, handler)``, all on one port (not in
    ``avoid``); a port taken on any address means closing them all and trying another."""
    for _ in range(tries):
        servers = []
        try:
            for index, (address, server_class, handler) in enumerate(specs):
                port = servers[0].server_address[1] if servers else 0
                servers.append(server_class((address, port), handler, web, index))
            if servers[0].server_address[1] not in avoid:
                return servers
        except OSError as err:
            if err.errno != errno.EADDRINUSE:
                raise
        for server in servers:
            server.server_close()
    raise RuntimeError(f"no port free on all of {[spec[0] for spec in specs]}")


class HostileWeb:
    """``hosts`` web servers and a canary, started on entry and closed on exit.

    ``fail_429`` / ``fail_503``: how many requests to each /429/ or /503/ path fail before it
    answers the image; ``delay``: seconds before every image answer (to make overlaps visible).
    """

    def __init__(self, hosts: int = 8, fail_429: int = 1, fail_503: int = 2, delay: float = 0.0):
        self.hosts, self.fail_429, self.fail_503, self.delay = hosts, fail_429, fail_503, delay
        self.retry_after = "1"
        self.addresses = [f"127.0.0.{FIRST + i}" for i in range(hosts)]
        self.names = [f"host{i}.{DOMAIN}" for i in range(hosts)]
        self.errors: list[BaseException] = []  # unexpected handler failures: a fixture bug
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._log: list[Request] = []
        self._counts: dict[tuple[int, str], int] = {}
        self._robots: dict[int, str | int] = {}
        self._canary: list[CanaryHit] = []
        self._connections: set[socket.socket] = set()
        self._servers: list[socketserver.TCPServer] = []

    def __enter__(self) -> "HostileWeb":
        canary = _Canary, _CanaryHandler
        web = [(address, _Server, _Handler) for address in self.addresses]
        self._servers = _bind_all([*web, ("127.0.0.1", *canary)], self)
        self.port = self._servers[0].server_address[1]
        canaries = [(address, *canary) for address in ["127.0.0.1", *self.addresses]]
        self._servers += _bind_all(canaries, self, avoid=[self.port])
        self.canary_port = self._servers[-1].server_address[1]
        for server in self._servers:
            threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop every server, wake every waiting handler and cut every open connection."""
        self._stop.set()
        for server in self._servers:
            server.shutdown()
            server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # -- addresses -------------------------------------------------------------------------

    @property
    def resolve(self) -> list[str]:
        """The pins: ``["host0.loopback-web.net:127.0.0.16", ...]``."""
        return [
            f"{name}:{address}" for name, address in zip(self.names, self.addresses, strict=True)
        ]

    def url(self, i: int, path: str = "/") -> str:
        return f"http://{self.names[i]}:{self.port}{path}"

    def ip_url(self, i: int, path: str = "/") -> str:
        return f"http://{self.addresses[i]}:{self.port}{path}"

    def redirect_url(self, i: int, to: str, code: int = 302) -> str:
        """Host ``i``'s /redirect answering ``code`` with ``Location: to``, verbatim."""
        return self.url(i, f"/redirect?to={quote(to, safe='')}&code={code}")

    def canary_url(self, path: str = "/", host: int | None = None, port: int | None = None) -> str:
        """The canary: on 127.0.0.1 at ``port`` (the canary's own, or the web's ``web.port``), or
        at host ``host``'s name on the canary's port (a redirect to another port)."""
        if host is not None:
            return f"http://{self.names[host]}:{self.canary_port}{path}"
        return f"http://127.0.0.1:{port or self.canary_port}{path}"

    # -- behaviour and records -------------------------------------------------------------

    def set_robots(self, i: int, rule: str | int | None) -> None:
        """Host ``i``'s /robots.txt: a text (200), a status code, "slow", or None (404)."""
        with self._lock:
            if rule is None:
                self._robots.pop(i, None)
            else:
                self._robots[i] = rule

    image_bytes = staticmethod(image_bytes)

    @property
    def canary_hits(self) -> int:
        time.sleep(0.15)  # let the accept loops (50 ms polls) take what the kernel accepted
        with self._lock:
            return len(self._canary)

    def canary_log(self) -> list[CanaryHit]:
        with self._lock:
            return [dataclasses.replace(hit) for hit in self._canary]

    def requests(self, host: int | None = None, path: str | None = None) -> list[Request]:
        """Copies of the records, in arrival order; ``path`` matches with or without a query."""
        with self._lock:
            log = [dataclasses.replace(r) for r in self._log]
        return [
            r
            for r in log
            if (host is None or r.host == host)
            and (path is None or path in (r.path, r.path.split("?")[0]))
        ]

    def reset(self) -> None:
        """Forget the records, the canary's log and the failure counters."""
        with self._lock:
            self._log.clear()
            self._canary.clear()
            self._counts.clear()

    def _record(self, hit: Request) -> None:
        with self._lock:
            self._log.append(hit)

    def _bump(self, host: int, path: str) -> int:
        with self._lock:
            self._counts[host, path] = self._counts.get((host, path), 0) + 1
            return self._counts[host, path]

    def _opened(self, connection) -> None:
        with self._lock:
            self._connections.add(connection)

    def _closed(self, connection) -> None:
        with self._lock:
            self._connections.discard(connection)


@pytest.fixture(scope="module", name="web")
def module_web():
    """One hostile web per test module; a handler error anywhere fails the module."""
    with HostileWeb() as hostile:
        yield hostile
    assert hostile.errors == []
