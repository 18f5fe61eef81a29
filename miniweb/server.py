"""Serve a built mini web over HTTP on loopback, with its hostile behaviours.

Files under ``site/`` are served as they are; the manifest adds behaviours to some URLs:
``timeout`` samples sleep ``slow_seconds`` before answering, ``redirect_success`` samples answer
``302`` with a Location on this server, ``robots_noai`` samples carry ``X-Robots-Tag: noai,
noimageai``, and ``content_type`` overrides the type guessed from the file name (an HTML page
behind a ``.jpg`` URL). Anything else that is missing is a ``404``.

    with serve(out_dir, port=port, slow_seconds=1.5) as server:
        urllib.request.urlopen(server.url + "/img/photos/astronaut.jpg")
"""

import mimetypes
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from vlcurate.miniweb.hostile import NOAI_HEADER
from vlcurate.miniweb.manifest import SITE_DIR, Manifest

DEFAULT_SLOW_SECONDS = 5.0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (build with it, then serve on it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass(slots=True)
class Route:
    """What a URL path does beyond serving its file."""

    delay: bool = False
    redirect: str | None = None  # path on this server
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str | None = None


def routes_from(manifest: Manifest) -> dict[str, Route]:
    """URL path -> behaviour, for every sample on this server that needs more than a file."""
    base = manifest.base_url
    routes = {}
    for s in manifest.samples:
        if not s.image_url.startswith(base + "/"):
            continue
        path = s.image_url.removeprefix(base)
        route = Route(content_type=s.content_type)
        if s.expected_download == "timeout":
            route.delay = True
        elif s.expected_download == "redirect_success" and s.redirect_to:
            route.redirect = s.redirect_to.removeprefix(base)
        elif s.expected_download == "robots_noai":
            route.headers = (NOAI_HEADER,)
        routes[path] = route
    return routes


class MiniWebServer(ThreadingHTTPServer):
    """A threading HTTP server over a build folder; use :func:`serve` to start one."""

    daemon_threads = True

    def __init__(self, out_dir, host: str, port: int, slow_seconds: float, verbose: bool):
        self.root = (Path(out_dir) / SITE_DIR).resolve()
        self.manifest = Manifest.load(out_dir)
        self.routes = routes_from(self.manifest)
        self.slow_seconds = slow_seconds
        self.verbose = verbose
        self.requests: list[str] = []  # paths requested, in order
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None
        super().__init__((host, port), _Handler)

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.server_address[0]}:{self.port}"

    def start(self) -> "MiniWebServer":
        self._thread = threading.Thread(target=self.serve_forever, name="miniweb", daemon=True)
        self._thread.start()
        return self

    def shutdown(self) -> None:
        """Stop serving (slow responses in progress give up at once) and close the socket."""
        self.stopping.set()
        if self._thread is not None:
            super().shutdown()
            self._thread.join()
            self._thread = None
        self.server_close()

    def __enter__(self) -> "MiniWebServer":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()

    def handle_error(self, request, client_address) -> None:
        pass  # a client that hung up on a slow response is expected, not an error


class _Handler(BaseHTTPRequestHandler):
    server: MiniWebServer
    server_version = "miniweb/1.0"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _answer(self, body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        self.server.requests.append(path)
        route = self.server.routes.get(path, Route())
        if route.delay and self.server.stopping.wait(self.server.slow_seconds):
            return  # shutting down
        if route.redirect:
            location = self.server.url + route.redirect
            self._send(302, b"", "text/plain", body, (("Location", location),))
            return
        file = self._file(path)
        if file is None:
            page = b"<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>\n"
            self._send(404, page, "text/html; charset=utf-8", body)
            return
        content_type = route.content_type or mimetypes.guess_type(file.name)[0]
        self._send(
            200, file.read_bytes(), content_type or "application/octet-stream", body, route.headers
        )

    def _file(self, path: str) -> Path | None:
        root = self.server.root
        candidate = (root / path.lstrip("/")).resolve()
        if candidate.is_dir():
            candidate = candidate / "index.html"
        if not candidate.is_relative_to(root) or not candidate.is_file():
            return None
        return candidate

    def _send(self, status, data: bytes, content_type: str, body: bool, headers=()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(data)


def serve(
    out_dir,
    host: str = "127.0.0.1",
    port: int = 0,
    slow_seconds: float = DEFAULT_SLOW_SECONDS,
    verbose: bool = False,
) -> MiniWebServer:
    """Serve a build folder in a background thread; returns the running server (``.url``,
    ``.port``, ``.shutdown()``, a context manager). ``port=0`` picks a free port, but the
    crawl's URLs carry the port given to ``build``: serve on that one to follow them."""
    return MiniWebServer(out_dir, host, port, slow_seconds, verbose).start()
