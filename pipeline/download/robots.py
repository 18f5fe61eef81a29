"""robots.txt: asked once per origin before the first request to it, cached for the run.

An origin is (scheme, host, port), as RFC 9309 scopes a robots.txt. Its answer decides, as the
RFC and Google's documented crawler do:

- 2xx: the body is parsed (with protego) for our product token, else the ``*`` group. Only the
  first :data:`ROBOTS_MAX_BYTES` are read; a line cut by the cap is dropped, so a rule can never
  widen by being cut short (``Allow: /images`` -> ``Allow: /``).
- 3xx as the final answer (the fetcher follows redirects; one left means too many hops), and
  4xx other than 429 (401 and 403 included): "unavailable", every URL may be fetched.
- 429, 5xx, and a fetch that failed (timeout, connection error, DNS, too large: status ``None``):
  "unreachable", nothing on that origin is fetched for the rest of the run. A server that
  cannot answer for its robots.txt gets no image requests either.

A disallowed URL is dropped before any request with :data:`ROBOTS_DISALLOWED`; ``Crawl-delay``
(for the group that applies to us) sets that host's request interval.
"""

import hashlib
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import fsspec
from protego import Protego

from vlcurate.pipeline import storage

ROBOTS_DISALLOWED = "robots_disallowed"
ROBOTS_MAX_BYTES = 500 * 1024  # RFC 9309: parse at least 500 KiB; Google stops there
DEFAULT_TOKEN = "vlcurate"
TOKEN_PATTERN = re.compile(r"[A-Za-z_-]+")  # RFC 9309's product token

# What an origin's robots.txt said, counted per origin in RobotsCache.kinds.
PARSED = "parsed"  # 2xx: its rules apply
UNAVAILABLE = "unavailable"  # 3xx/4xx: allow all
UNREACHABLE = "unreachable"  # 429/5xx/failed: disallow all

DEFAULT_PORTS = {"http": 80, "https": 443}
JSON_VERSION = 1

Fetch = Callable[[str], tuple[int | None, bytes | None]]


def origin(url: str) -> str:
    """``"https://Example.com/a.jpg"`` -> ``"https://example.com:443"``: the scheme and host
    lowercased, the port always written. An IDN host stays as it is given (Unicode and its
    punycode form are two origins here). ValueError for a URL that is not http(s) with a host."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"not an http(s) URL with a host: {url!r}")
    host = parts.hostname
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    return f"{scheme}://{host}:{parts.port or DEFAULT_PORTS[scheme]}"


def robots_url(origin: str) -> str:
    """``"https://host:443"`` -> ``"https://host/robots.txt"`` (a default port left out, as a
    server's Host header expects); ``"http://host:8080"`` keeps its port."""
    scheme, rest = origin.split("://", 1)
    host, port = rest.rsplit(":", 1)
    if DEFAULT_PORTS.get(scheme) == int(port):
        return f"{scheme}://{host}/robots.txt"
    return f"{scheme}://{host}:{port}/robots.txt"


def kind_of(status: int | None) -> str:
    """What an answer's status means for the whole origin (see the module docstring)."""
    if status is None or status == 429 or not 200 <= status < 500:
        return UNREACHABLE
    return PARSED if status < 300 else UNAVAILABLE


def decode_capped(body: bytes) -> str:
    """The first :data:`ROBOTS_MAX_BYTES` of a body as text (a BOM dropped, bad UTF-8 replaced);
    when the cap cuts, the incomplete last line is dropped."""
    if len(body) > ROBOTS_MAX_BYTES:
        body = body[:ROBOTS_MAX_BYTES]
        cut = max(body.rfind(b"\n"), body.rfind(b"\r"))
        body = body[: cut + 1]
    return body.decode("utf-8-sig", errors="replace")


@dataclass
class RobotsRules:
    """What one origin's robots.txt says for our token. ``text`` is the capped, decoded body
    (kept, so a resumed run with another token parses it again)."""

    status: int | None
    text: str
    token: str = DEFAULT_TOKEN
    fetched_at: float = 0.0
    kind: str = field(init=False)
    _parser: Protego | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self):
        self.kind = kind_of(self.status)
        if self.kind == PARSED:
            self._parser = Protego.parse(self.text)

    @classmethod
    def from_answer(
        cls, status: int | None, body: bytes | None, token: str = DEFAULT_TOKEN
    ) -> "RobotsRules":
        """From the fetcher's answer; ``status=None`` is a failed fetch (disallow all)."""
        text = decode_capped(body or b"") if kind_of(status) == PARSED else ""
        return cls(status, text, token, time.time())

    def allowed(self, url: str) -> bool:
        if self._parser is not None:
            return self._parser.can_fetch(url, self.token)
        return self.kind == UNAVAILABLE

    @property
    def crawl_delay(self) -> float | None:
        """Seconds between requests, from the group that applies to our token (its own, else
        ``*``); None when that group sets none."""
        return self._parser.crawl_delay(self.token) if self._parser is not None else None

    def to_json(self) -> dict:
        return {
            "version": JSON_VERSION,
            "status": self.status,
            "body": self.text,
            "fetched_at": self.fetched_at,
        }

    @classmethod
    def from_json(cls, d: dict, token: str = DEFAULT_TOKEN) -> "RobotsRules":
        if d.get("version") != JSON_VERSION:
            raise ValueError(f"robots cache version {d.get('version')!r}, want {JSON_VERSION}")
        status = d["status"]
        if status is not None and not isinstance(status, int):
            raise ValueError(f"robots cache status {status!r}")
        return cls(status, str(d["body"]), token, float(d["fetched_at"]))


class RobotsCache:
    """Per process: the rules of every origin seen, each fetched once.

    ``fetch(url) -> (status | None, body | None)`` is the caller's fetcher (deadline, size cap,
    checked redirects, politeness). Thread-safe: concurrent callers for one origin wait for one
    fetch. A fetch that raises counts as failed (disallow all, not written to ``folder``, so a
    rerun asks again); its waiters are released either way.

    ``folder`` (``OUTPUT/_robots``, any fsspec URL) keeps one JSON per origin, so a resumed run
    reuses the answers instead of fetching again; a JSON there wins over fetching. Two processes
    may each fetch one origin once (no lock spans processes); the one that writes second takes
    the first one's file if it appears in between, so they nearly always agree.
    """

    def __init__(self, fetch: Fetch, token: str = DEFAULT_TOKEN, folder: str | None = None):
        if not TOKEN_PATTERN.fullmatch(token):
            raise ValueError(f"user agent token {token!r}: letters, '-' and '_' only")
        self.fetch_robots = fetch
        self.token = token
        self.folder = folder
        self.fetches = 0  # robots.txt requests made
        self.reused = 0  # origins read back from folder
        self.fetch_errors = 0  # fetches that raised (a fetcher bug: counted, not hidden)
        self.kinds: Counter[str] = Counter()  # origins by PARSED / UNAVAILABLE / UNREACHABLE
        self.checked: Counter[str] = Counter()  # allowed(): "allowed" / ROBOTS_DISALLOWED
        self._rules: dict[str, RobotsRules] = {}
        self._pending: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def rules(self, url: str) -> RobotsRules:
        """The rules for ``url``'s origin: from memory, else ``folder``, else one fetch."""
        key = origin(url)
        while True:
            with self._lock:
                if key in self._rules:
                    return self._rules[key]
                event = self._pending.get(key)
                owner = event is None
                if owner:
                    event = self._pending[key] = threading.Event()
            if owner:
                return self._load(key, event)
            event.wait()  # the owner publishes rules, or left none (re-ask; we may own it now)

    def allowed(self, url: str) -> bool:
        """``rules(url).allowed(url)``, counted in :attr:`checked`."""
        ok = self.rules(url).allowed(url)
        with self._lock:
            self.checked["allowed" if ok else ROBOTS_DISALLOWED] += 1
        return ok

    def stats(self) -> dict:
        with self._lock:
            return {
                "robots_fetches": self.fetches,
                "robots_reused": self.reused,
                "robots_fetch_errors": self.fetch_errors,
                **{f"robots_{k}": n for k, n in sorted(self.kinds.items())},
                **{f"robots_checked_{k}": n for k, n in sorted(self.checked.items())},
            }

    def path(self, key: str) -> str:
        """Where ``folder`` keeps an origin's answer (a hash: hosts make poor file names)."""
        name = hashlib.sha256(key.encode()).hexdigest()[:32]
        return storage.join(self.folder, f"{name}.json")

    def _load(self, key: str, event: threading.Event) -> RobotsRules:
        fresh = False
        try:
            rules = self._read(key)
            reused = rules is not None
            if rules is None:
                rules, fresh = self._ask(key)
                theirs = self._read(key) if fresh else None  # another process came first?
                if theirs is not None:
                    rules, fresh = theirs, False
            self._publish(key, rules, reused)
        finally:
            with self._lock:
                del self._pending[key]
            event.set()
        if fresh and self.folder is not None:
            self._write(key, rules)
        return rules

    def _ask(self, key: str) -> tuple[RobotsRules, bool]:
        """One fetch: ``(rules, True)``, or ``(disallow all, False)`` when the fetcher raised."""
        with self._lock:
            self.fetches += 1
        try:
            status, body = self.fetch_robots(robots_url(key))
        except Exception:
            with self._lock:
                self.fetch_errors += 1
            return RobotsRules.from_answer(None, None, self.token), False
        return RobotsRules.from_answer(status, body, self.token), True

    def _publish(self, key: str, rules: RobotsRules, reused: bool = False) -> None:
        with self._lock:
            self._rules[key] = rules
            self.kinds[rules.kind] += 1
            self.reused += reused

    def _read(self, key: str) -> RobotsRules | None:
        """An origin's answer from ``folder``; None when absent or unreadable (fetch again)."""
        if self.folder is None:
            return None
        try:
            d = json.loads(storage.read_text(self.path(key)))
            if d.get("origin") != key:
                return None
            return RobotsRules.from_json(d, self.token)
        except (FileNotFoundError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def _write(self, key: str, rules: RobotsRules) -> None:
        text = json.dumps({"origin": key, **rules.to_json()})  # ASCII: any locale reads it
        storage.write_text_atomic(self.path(key), text)


def forget_unreachable(folder: str) -> int:
    """Delete the kept answers that were failures (5xx, 429, no answer), so that a repair asks
    those origins again instead of refusing their URLs once more; returns how many."""
    fs, path = fsspec.core.url_to_fs(folder)
    forgotten = 0
    for name in fs.glob(f"{path}/*.json"):
        try:
            status = json.loads(fs.cat_file(name)).get("status")
        except (ValueError, AttributeError):
            status = None  # unreadable: asked again anyway
        if kind_of(status if isinstance(status, int) else None) == UNREACHABLE:
            fs.rm(name)
            forgotten += 1
    return forgotten
