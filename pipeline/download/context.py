"""What one process needs to download shards, made once per process and kept across its shards:
the DNS cache, the machine-wide politeness table, the robots.txt answers, the lists (which may
be tens of MB: loaded from their files by each process, never pickled to it), the client and
img2dataset's resizer."""

import io
import json
import os
from dataclasses import dataclass, field

from vlcurate.pipeline import storage
from vlcurate.pipeline.download.client import Client, ClientSettings
from vlcurate.pipeline.download.config import DownloadConfig
from vlcurate.pipeline.download.lists import Blocklist, OptOut
from vlcurate.pipeline.download.politeness import HostGate, remove_tables
from vlcurate.pipeline.download.resolver import Resolver
from vlcurate.pipeline.download.robots import (
    ROBOTS_DISALLOWED,
    ROBOTS_MAX_BYTES,
    RobotsCache,
    RobotsRules,
    origin,
)
from vlcurate.pipeline.download.safety import SafetyConfig, UrlSafety

ROBOTS = "_robots"  # robots.txt answers, kept in the output for a resumed run
LEASE_SLACK = 5.0  # seconds a politeness lease outlives its request's deadline
_PROCESS: dict[str, "Fetching"] = {}


def user_agent(token: str) -> str:
    return f"Mozilla/5.0 (compatible; {token}/1.0; +https://github.com/vlcurate)"


@dataclass
class Fetching:
    config: DownloadConfig
    safety: UrlSafety
    client: Client
    gate: HostGate
    robots: RobotsCache
    blocklist: Blocklist
    opt_out: OptOut
    resizer: object
    fixed_rules: RobotsRules | None  # every origin's rules when robots.txt is not read
    pid: int = 0  # the process that made it (a forked child makes its own)
    # origin -> why its robots.txt got no answer at all (dns_error, timeout, private_address...)
    robots_failures: dict[str, str] = field(default_factory=dict)

    @property
    def threads(self) -> int:
        return self.config.threads or 64

    def host_of(self, url: str) -> str:
        return self.safety.check(url).host

    def delay(self, rules: RobotsRules | None) -> float:
        """The host's interval: ours, or its Crawl-delay up to ``max_crawl_delay``."""
        crawl_delay = (rules.crawl_delay if rules is not None else None) or 0.0
        return max(self.config.host_delay, min(crawl_delay, self.config.max_crawl_delay))

    def url_reason(self, url: str) -> str | None:
        """Why a redirect's target may not be requested (what the first URL passed before it
        was queued): the lists, then robots.txt."""
        from vlcurate.pipeline.download.lists import BLOCKLISTED, OPTED_OUT

        if self.opt_out.opted_out(url):
            return OPTED_OUT
        if self.blocklist.url_blocked(url):
            return BLOCKLISTED
        if self.fixed_rules is None and not self.robots.allowed(url):
            return self.disallowed_reason(url)
        return None

    def disallowed_reason(self, url: str) -> str:
        """Why robots.txt keeps ``url`` out: ROBOTS_DISALLOWED; or, where the origin's robots.txt
        got no answer at all, that fetch's reason (``dns_error``, ``timeout``,
        ``private_address``, ...): the URL's own request would end the same way, and a dead host
        or a name pinned to a private address is no robots.txt saying no."""
        return self.robots_failures.get(origin(url), ROBOTS_DISALLOWED)

    def exif(self, body: bytes) -> str | None:
        """The image's EXIF tags as JSON, as img2dataset's sidecar holds them."""
        import exifread

        try:
            tags = exifread.process_file(io.BytesIO(body), details=False)
            return json.dumps({k: str(v).strip() for k, v in tags.items() if v is not None})
        except Exception:  # noqa: BLE001 - a broken EXIF block is no reason to drop an image
            return None

    def fetch_robots(self, url: str) -> tuple[int | None, bytes | None]:
        """robots.txt through the same client: checked hops, a deadline, its own cap."""
        host = self.host_of(url)
        lease = self.gate.acquire(host, self.config.host_delay, give_up_at=None)
        outcome = self.client.get(url, ROBOTS_MAX_BYTES, lease, image=False)
        if outcome.body is not None:
            return outcome.status, outcome.body
        if outcome.status is None or 200 <= outcome.status < 300:
            # no whole answer: no status, or a body the deadline or the connection cut
            self.robots_failures[origin(url)] = outcome.reason
            return None, None
        return outcome.status, None


def fetching(config: DownloadConfig, safety: SafetyConfig, output: str, key: str) -> Fetching:
    """This process's :class:`Fetching` for one download (``key``: its settings digest)."""
    found = _PROCESS.get(key)
    if found is not None and found.pid == os.getpid():
        return found
    os.environ["CV_IO_MAX_IMAGE_PIXELS"] = str(config.max_image_area)  # OpenCV's bomb cap
    url_safety = UrlSafety(safety)
    gate = HostGate(
        key,
        config.host_concurrency,
        lease_seconds=config.timeout + LEASE_SLACK,
    )
    settings = ClientSettings(
        timeout=config.timeout,
        max_redirects=config.max_redirects,
        user_agent=user_agent(config.user_agent_token),
        opt_out_directives=tuple(config.robots_directives),
        host_delay=config.host_delay,
    )
    made = Fetching(
        config=config,
        safety=url_safety,
        client=Client(settings, url_safety, Resolver(config.resolve), gate),
        gate=gate,
        robots=None,
        blocklist=Blocklist.from_files(config.blocklist),
        opt_out=OptOut.from_files(config.opt_out),
        resizer=resizer(config),
        fixed_rules=None
        if config.robots
        else RobotsRules.from_answer(404, None, config.user_agent_token),
        pid=os.getpid(),
    )
    made.robots = RobotsCache(
        made.fetch_robots, config.user_agent_token, storage.join(output, ROBOTS)
    )
    made.client.check = made.url_reason
    made.client.delay_for = lambda url: made.delay(made.fixed_rules or made.robots.rules(url))
    _PROCESS[key] = made
    return made


def remove_gate(key: str) -> None:
    """Remove the run's politeness tables from this machine (the end of the run)."""
    made = _PROCESS.pop(key, None)
    if made is not None:
        made.gate.close()
        made.client.resolver.close()
    remove_tables(key)


def resizer(config: DownloadConfig):
    """img2dataset's Resizer for the stage's settings (also the benchmark's CPU floor)."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no update check over the network
    from img2dataset.resizer import Resizer

    return Resizer(
        image_size=config.image_size,
        resize_mode=config.resize_mode,
        resize_only_if_bigger=config.resize_only_if_bigger,
        encode_quality=config.encode_quality,
        encode_format="jpg",
        min_image_size=config.min_image_size,
        max_image_area=config.max_image_area,
        max_aspect_ratio=config.max_aspect_ratio,
    )
