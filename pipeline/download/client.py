"""Getting one URL: the redirects followed by our code, every hop checked before it is made.

For each hop, in this order: the URL's SSRF checks (:meth:`UrlSafety.check`: scheme, IP
literals in every spelling, internal names, ports); for a hop after the first, the caller's
``check`` (opt-outs, URL block list, robots.txt: everything the first URL passed before it was
queued) and a politeness lease on the new host; DNS (:mod:`.resolver`), and every address of the
answer checked (:meth:`UrlSafety.address_reason`) so that a public name resolving to a private
address is refused as ``private_address`` whatever the port; the request to that exact address
(:mod:`.fetch`); on 301/302/303/307/308 the ``Location`` is resolved against the URL and the
loop goes on, at most ``max_redirects`` times. ``X-Robots-Tag`` is read on the headers and the
body is never read for an image that opted out. One deadline covers every hop.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit

from vlcurate.pipeline.download.fetch import FetchError, open_answer, request_bytes
from vlcurate.pipeline.download.politeness import retry_after_seconds
from vlcurate.pipeline.download.resolver import DNS_ERROR, ResolveError, Resolver
from vlcurate.pipeline.download.safety import PRIVATE_ADDRESS, UrlSafety

REDIRECTS = frozenset({301, 302, 303, 307, 308})
RETRYABLE = frozenset({429, 503})
TOO_MANY_REDIRECTS = "too_many_redirects"
BAD_REDIRECT = "bad_redirect"  # a redirect without a Location
ROBOTS_OPT_OUT = "robots_opt_out"  # X-Robots-Tag says noai, noimageai, ...
POLITENESS_TIMEOUT = "timeout"  # no lease on a redirect's host before the deadline
PATH_SAFE = "/%:@!$&'()*+,;=~-._"


@dataclass
class ClientSettings:
    timeout: float = 10.0  # seconds for the whole request, every hop
    max_redirects: int = 5
    user_agent: str = "vlcurate"
    opt_out_directives: tuple[str, ...] = ("noai", "noimageai", "noindex", "noimageindex")
    host_delay: float = 0.2


@dataclass
class Outcome:
    """What getting a URL came to: a body, or a drop reason (and for 429/503 the server's
    Retry-After in seconds, if it sent one)."""

    body: bytes | None = None
    reason: str | None = None
    status: int | None = None
    host: str = ""  # the last hop's host
    retry_after: float | None = None
    hops: int = 0


class Client:
    """``get(url, max_bytes, lease)``: ``lease`` is the first hop's politeness lease, taken by
    the caller (released here); ``gate`` (a ``HostGate``) gives the later hops theirs."""

    def __init__(
        self,
        settings: ClientSettings,
        safety: UrlSafety,
        resolver: Resolver,
        gate=None,
        check: Callable[[str], str | None] | None = None,
        delay_for: Callable[[str], float] | None = None,
    ):
        self.settings = settings
        self.safety = safety
        self.resolver = resolver
        self.gate = gate
        self.check = check or (lambda url: None)
        self.delay_for = delay_for or (lambda url: settings.host_delay)
        self.opt_outs = frozenset(settings.opt_out_directives)

    def get(self, url: str, max_bytes: int, lease=None, image: bool = True) -> Outcome:
        """``image=False`` (robots.txt): no X-Robots-Tag check, no ``check`` of its redirects
        (the lists and robots.txt are about images; robots.txt asking for its own rules would
        wait on itself), and a body past ``max_bytes`` is cut there rather than refused."""
        deadline = time.monotonic() + self.settings.timeout
        return self._follow(url, max_bytes, lease, image, deadline)

    def _follow(self, url, max_bytes, lease, image, deadline) -> Outcome:
        outcome, previous = Outcome(), ""
        try:
            for hop in range(self.settings.max_redirects + 1):
                outcome.hops = hop + 1
                checked = self.safety.check(url)
                outcome.host = checked.host
                if checked.reason is not None:
                    return _ended(outcome, checked.reason)
                if hop > 0:
                    if image and (reason := self.check(url)):
                        return _ended(outcome, reason)
                    if checked.host != previous:  # same host: the request keeps its slot
                        lease = self._release(lease)
                        lease = self._lease(checked.host, url, deadline, image)
                        if lease is None and self.gate is not None:
                            return _ended(outcome, POLITENESS_TIMEOUT)
                previous = checked.host
                location = self._hop(url, checked, max_bytes, image, deadline, outcome)
                if location is None:
                    return outcome
                url = location
            return _ended(outcome, TOO_MANY_REDIRECTS)
        finally:
            self._release(lease)

    def _hop(self, url, checked, max_bytes, image, deadline, outcome) -> str | None:
        """One request; the next URL for a redirect, else None with ``outcome`` filled in."""
        try:
            address = self._address(checked, deadline)
        except ResolveError:
            return _dropped(outcome, DNS_ERROR)
        if address is None:
            return _dropped(outcome, PRIVATE_ADDRESS)
        request = request_bytes(_target(url), _host_header(checked), self.settings.user_agent)
        tls_host = checked.host if checked.scheme == "https" else None
        try:
            answer = open_answer(str(address), checked.port, tls_host, request, deadline)
        except FetchError as e:
            return _dropped(outcome, e.reason)
        try:
            outcome.status = answer.status
            if answer.status in REDIRECTS:
                location = answer.header("Location")
                if not location:
                    return _dropped(outcome, BAD_REDIRECT)
                return urljoin(url, location.strip())
            if not 200 <= answer.status < 300:
                if answer.status in RETRYABLE:
                    outcome.retry_after = retry_after_seconds(answer.header("Retry-After"))
                return _dropped(outcome, f"http_{answer.status}")
            if image and self._opted_out(answer.headers.get_all("X-Robots-Tag") or []):
                return _dropped(outcome, ROBOTS_OPT_OUT)
            outcome.body = answer.read_body(max_bytes, cut=not image)
            return None
        except FetchError as e:
            return _dropped(outcome, e.reason)
        finally:
            answer.close()

    def _address(self, checked, deadline):
        """The address to connect to, or None when any address the name has is refused."""
        addresses = [checked.ip] if checked.ip is not None else None
        if addresses is None:
            addresses = self.resolver.resolve(checked.host, checked.port, deadline)
        if any(self.safety.address_reason(ip, checked.port) for ip in addresses):
            return None
        return addresses[0]

    def _opted_out(self, values: list[str]) -> bool:
        """X-Robots-Tag: ``noai`` for every crawler, or ``vlcurate: noai`` for ours."""
        token = self.settings.user_agent.split("/", 1)[0].lower()
        for value in values:
            agent, sep, rest = value.partition(":")
            if sep and " " not in agent.strip() and "," not in agent:
                if agent.strip().lower() not in (token, "*"):
                    continue
                value = rest
            directives = {d.strip().lower() for d in value.split(",")}
            if directives & self.opt_outs:
                return True
        return False

    def _lease(self, host: str, url: str, deadline: float, image: bool = True):
        """A lease on a redirect's host. For robots.txt (``image=False``) our own delay: the
        target's interval comes from its robots.txt, and asking for that from inside a
        robots.txt fetch waits on itself when robots.txt redirects to its own origin."""
        if self.gate is None:
            return None
        delay = self.delay_for(url) if image else self.settings.host_delay
        return self.gate.acquire(host, delay, give_up_at=deadline)

    def _release(self, lease) -> None:
        if lease is not None and self.gate is not None:
            self.gate.release(lease)
        return None


def _dropped(outcome: Outcome, reason: str) -> None:
    """Set the drop reason; None: no further hop."""
    outcome.reason = reason
    return None


def _ended(outcome: Outcome, reason: str) -> Outcome:
    outcome.reason = reason
    return outcome


def _target(url: str) -> str:
    """The request target: path and query, percent-encoded where a crawl's URL is not ASCII."""
    parts = urlsplit(url)
    path = quote(parts.path or "/", safe=PATH_SAFE)
    return f"{path}?{quote(parts.query, safe=PATH_SAFE + '?')}" if parts.query else path


def _host_header(checked) -> str:
    host = f"[{checked.host}]" if ":" in checked.host else checked.host
    default = 443 if checked.scheme == "https" else 80
    return host if checked.port == default else f"{host}:{checked.port}"
