"""One HTTP request to one checked address, with a deadline on the whole of it and a cap on
its body: the stdlib's ``http.client`` parses the answer, this module owns the socket.

Why not img2dataset's ``urllib`` (or ``requests``, ``httpx``, ``urllib3``): each of them
applies its timeout to one socket read, so a server sending a byte a second holds a request for
as long as it likes; each resolves the name itself and connects to whatever DNS says, after any
check of ours. Here the caller resolves and checks the address (:mod:`.resolver`,
:meth:`UrlSafety.address_reason`), :func:`open_answer` connects to exactly that address and
sends the URL's host as ``Host`` and TLS SNI, and every read sets the socket's timeout to what
is left of the request's deadline: connect, TLS handshake, status line, headers and body all
end by then, whatever the server sends. The body is read in chunks up to ``max_bytes``: a
larger ``Content-Length`` is refused before the body, and a body that grows past it is cut.
No request ever holds more than ``max_bytes`` of body in memory.

One request per connection (``Connection: close``), as img2dataset does.
"""

import io
import socket
import ssl
import time
from dataclasses import dataclass
from http.client import HTTPException, HTTPResponse, IncompleteRead, RemoteDisconnected

TIMEOUT = "timeout"
TOO_LARGE_BODY = "too_large_body"
CONNECTION_REFUSED = "connection_refused"
CONNECTION_RESET = "connection_reset"
CONNECTION_ERROR = "connection_error"
TLS_ERROR = "tls_error"
BAD_RESPONSE = "bad_response"  # not HTTP, or headers past http.client's limits
INCOMPLETE_BODY = "incomplete_body"  # the connection ended before Content-Length bytes
CHUNK = 64 * 1024

_TLS = ssl.create_default_context()


class FetchError(Exception):
    """A request that ended without an answer; ``reason`` is the drop reason."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class _DeadlineReader(io.RawIOBase):
    """Reads from ``sock``, each read waiting at most until ``deadline``."""

    def __init__(self, sock: socket.socket, deadline: float):
        self.sock = sock
        self.deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request's deadline passed")
        self.sock.settimeout(left)
        return self.sock.recv_into(buffer)


class _Socket:
    """What ``HTTPResponse`` needs of a socket: ``makefile``, reading under the deadline."""

    def __init__(self, sock: socket.socket, deadline: float):
        self.sock = sock
        self.deadline = deadline

    def makefile(self, mode: str):
        return io.BufferedReader(_DeadlineReader(self.sock, self.deadline), CHUNK)


@dataclass
class Answer:
    """The status line and headers of an answer; read the body with :meth:`read_body`."""

    status: int
    headers: object  # http.client.HTTPMessage
    response: HTTPResponse
    sock: socket.socket

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def read_body(self, max_bytes: int, cut: bool = False) -> bytes:
        """The whole body, or FetchError(TOO_LARGE_BODY) as soon as it passes ``max_bytes``;
        ``cut``: its first ``max_bytes`` instead (robots.txt)."""
        length = self.response.length  # Content-Length, or None (chunked, close-delimited)
        if cut:
            return self._read_at_most(max_bytes)
        if length is not None and length > max_bytes:
            raise FetchError(TOO_LARGE_BODY, f"Content-Length {length} > {max_bytes}")
        parts, size = [], 0
        try:
            while chunk := self.response.read(min(CHUNK, max_bytes + 1 - size)):
                parts.append(chunk)
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError(TOO_LARGE_BODY, f"more than {max_bytes} bytes")
        except IncompleteRead as e:
            raise FetchError(INCOMPLETE_BODY, f"{len(e.partial)} bytes, then the end") from None
        except (OSError, HTTPException) as e:
            raise _failure(e) from None
        return b"".join(parts)

    def _read_at_most(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` of the body, read to its end: a body the deadline cut is a
        timeout, not a shorter body (a read may return what came before the deadline)."""
        parts, size = [], 0
        try:
            while size < max_bytes and (chunk := self.response.read(min(CHUNK, max_bytes - size))):
                parts.append(chunk)
                size += len(chunk)
        except IncompleteRead as e:
            raise FetchError(INCOMPLETE_BODY, f"{len(e.partial)} bytes, then the end") from None
        except (OSError, HTTPException) as e:
            raise _failure(e) from None
        return b"".join(parts)

    def close(self) -> None:
        self.response.close()
        self.sock.close()


def request_bytes(path: str, host_header: str, user_agent: str) -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host_header}",
        f"User-Agent: {user_agent}",
        "Accept: image/avif,image/webp,image/*,*/*;q=0.8",
        "Accept-Encoding: identity",
        "Connection: close",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def open_answer(
    address: str,
    port: int,
    tls_host: str | None,
    request: bytes,
    deadline: float,
) -> Answer:
    """Connect to ``address`` (already checked), send ``request``, read the status line and
    headers. ``tls_host``: the name for SNI and the certificate check (None: plain HTTP)."""
    sock = None
    try:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request's deadline passed")
        sock = socket.create_connection((address, port), timeout=left)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls_host is not None:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            sock = _TLS.wrap_socket(sock, server_hostname=tls_host)
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        sock.sendall(request)
        response = HTTPResponse(_Socket(sock, deadline), method="GET")
        response.begin()
        return Answer(response.status, response.headers, response, sock)
    except BaseException as e:
        if sock is not None:
            sock.close()
        if isinstance(e, (OSError, HTTPException)):
            raise _failure(e) from None
        raise


def _failure(e: BaseException) -> FetchError:
    """The drop reason of a failed request."""
    if isinstance(e, TimeoutError | socket.timeout):
        return FetchError(TIMEOUT, str(e))
    if isinstance(e, ConnectionRefusedError):
        return FetchError(CONNECTION_REFUSED)
    if isinstance(e, ConnectionResetError | BrokenPipeError | RemoteDisconnected):
        return FetchError(CONNECTION_RESET, str(e))
    if isinstance(e, ssl.SSLError | ssl.CertificateError):
        return FetchError(TLS_ERROR, str(e))
    if isinstance(e, HTTPException):
        return FetchError(BAD_RESPONSE, f"{type(e).__name__}: {e}")
    return FetchError(CONNECTION_ERROR, f"{type(e).__name__}: {e}")
