"""Name resolution for the download: a per-process cache, a deadline, and pins.

Every image URL names a host, and a shard names the same few hosts thousands of times; asking
the system resolver each time is slow and, at crawl rates, what gets a resolver to throttle you
(img2dataset #360). :class:`Resolver` asks once per host and keeps the answer (an error too) for
``ttl`` seconds. ``getaddrinfo`` has no timeout of its own, so lookups run on a small pool of
threads and the caller waits at most until its request's deadline; a lookup still hanging then
is left to the system resolver's own timeout and counted as ``dns_error`` for the caller.

Pins (``HOST:ADDRESS``, as curl's ``--resolve``) answer a name without asking DNS: for tests on
loopback, or to pin a host to one address. A pinned address is checked like any other: the
fetcher checks every address it connects to (:meth:`UrlSafety.address_reason`), wherever it came
from, so a pin cannot open a private network the safety settings keep closed.
"""

import ipaddress
import socket
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

DNS_ERROR = "dns_error"
LOOKUP_THREADS = 8
TTL_SECONDS = 300.0


class ResolveError(OSError):
    """The name has no usable address (unknown, no answer in time, or the resolver failed)."""


def parse_pins(pins: list[str]) -> dict[str, list]:
    """``["host:1.2.3.4", "host:[::1]", "host:1.2.3.5"]`` -> ``{"host": [addresses]}``;
    ValueError naming the entry for anything else."""
    table: dict[str, list] = {}
    for entry in pins:
        host, sep, address = entry.partition(":")
        if not sep or not host or not address:
            raise ValueError(f"{entry!r} is not HOST:ADDRESS")
        try:
            ip = ipaddress.ip_address(address.strip("[]"))
        except ValueError:
            raise ValueError(f"{entry!r}: {address!r} is not an IP address") from None
        table.setdefault(host.lower().rstrip("."), []).append(ip)
    return table


class Resolver:
    """``resolve(host, port, deadline)`` -> the host's addresses, IPv4 first; ResolveError."""

    def __init__(self, pins: list[str] | None = None, ttl: float = TTL_SECONDS):
        self.pins = parse_pins(pins or [])
        self.ttl = ttl
        self._cache: dict[str, tuple[float, Future]] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(LOOKUP_THREADS, thread_name_prefix="dns")
        self.lookups = 0  # questions actually asked of the system resolver

    def resolve(self, host: str, port: int, deadline: float) -> list:
        if host in self.pins:
            return self.pins[host]
        try:
            return [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            pass
        left = deadline - time.monotonic()
        if left <= 0:
            raise ResolveError(f"no time left before the deadline to resolve {host}")
        future = self._lookup(host, port)
        try:
            return future.result(timeout=left)
        except FutureTimeout:
            raise ResolveError(f"no answer for {host} before the deadline") from None

    def _lookup(self, host: str, port: int) -> Future:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(host)
            if cached is not None and cached[0] > now:
                return cached[1]
            future = self._pool.submit(_addresses, host, port)
            self._cache[host] = (now + self.ttl, future)
            self.lookups += 1
            return future

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _addresses(host: str, port: int) -> list:
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise ResolveError(f"{host}: {e}") from None
    found = []
    for *_, sockaddr in answers:
        ip = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        if ip not in found:
            found.append(ip)
    if not found:
        raise ResolveError(f"{host}: no address")
    return sorted(found, key=lambda ip: ip.version)  # IPv4 first: most hosts' working path
