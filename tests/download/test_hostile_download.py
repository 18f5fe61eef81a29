"""The download stage end to end against the hostile loopback web (``tests/download/hostile.py``):
per-host politeness, robots.txt, 429/503 retries, and shards that hold what their sidecars say.
Every claim is checked on the web's own records of the requests it got, not on wall time.
(Deadlines, size caps, redirects, lists and X-Robots-Tag: ``test_hostile_limits.py``.)"""

import dataclasses
import json
import tarfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.download.hostile import (
    DOMAIN,
    HostileWeb,
    image_bytes,
    least_spacing,
    module_web,  # noqa: F401 - the `web` fixture
    peak_concurrency,
)
from tests.pairs import pairs_table
from vlcurate.pipeline.download.politeness import RATE_LIMITED, SERVER_UNAVAILABLE
from vlcurate.pipeline.download.robots import ROBOTS_DISALLOWED
from vlcurate.pipeline.download.safety import SafetyConfig
from vlcurate.pipeline.download.stage import DownloadConfig, download_stage

# The records are the server's view: a request's start is when the server read its request line,
# some time after the gate granted its lease (the thread still checks the URL, connects and
# sends; the server's accept loop starts a handler thread). The gate's grants are spaced
# exactly; the starts are spaced by that plus or minus the difference of two such latencies.
# A request's end is when the server's thread, after its last write, got the GIL back (the web
# runs in this process): the client may have read the last byte, freed its slot and started the
# next request before that. Both lags are a few ms on an idle machine, but with two cores shared
# by other test processes (load ~7) a thread waits for the GIL and the CPU, and they were seen
# to reach ~0.1 s. A gate that ignored the delay would put starts ~1 ms apart, one that halved
# it 0.2 s apart; one that ignored the cap would overlap a third request by ~0.2 s here.
JITTER = 0.1


def safety_for(web: HostileWeb) -> SafetyConfig:
    """The web's hosts on the web's port only: 127.0.0.1 (the canary) and every other port of
    the hosts' addresses stay private. The canary's port is an allowed URL port, so a redirect
    to it passes the URL check and is refused where the fetcher connects."""
    return SafetyConfig(
        allowed_ports=[web.port, web.canary_port],
        allow_networks=[f"{address}:{web.port}" for address in web.addresses],
    )


@dataclass
class Run:
    stats: dict
    out: Path
    table: pa.Table
    rows: dict  # url -> its sidecar row (the URL found through the row's uid)
    seconds: float

    def reason(self, url: str) -> str | None:
        return self.rows[url]["error_message"]

    def kept(self, url: str) -> bool:
        return self.rows[url]["status"] == "success"


def download(web, tmp_path, urls, safety=None, name="out", **settings) -> Run:
    """Run the stage in this process on ``urls`` (caption ``caption N`` for the N-th)."""
    config = {
        "image_size": 32,
        "processes": 1,
        "threads": 8,
        "samples_per_shard": 50,
        "timeout": 3,
        "resolve": web.resolve,
        "host_concurrency": 2,
        "host_delay": 0.05,
        **settings,
    }
    table = pairs_table(*[f"caption {i}" for i in range(len(urls))], urls=urls)
    out = tmp_path / name
    start = time.monotonic()
    stats = download_stage(table, str(out), DownloadConfig(**config), safety or safety_for(web))
    seconds = time.monotonic() - start
    assert stats["in"] == len(urls) == stats["kept"] + sum(stats["dropped"].values())
    url_of = dict(zip(table.column("uid").to_pylist(), urls, strict=True))
    found = sidecar_rows(out)
    rows = {url_of[row["uid"]]: row for row in found}
    assert len(rows) == len(found)  # one row per URL fetched
    check_shards(out)
    assert web.errors == []
    return Run(stats, out, table, rows, seconds)


def sidecar_rows(out: Path) -> list[dict]:
    return [row for p in sorted(out.glob("[0-9]*.parquet")) for row in pq.read_table(p).to_pylist()]


def check_shards(out: Path) -> None:
    """Each tar holds exactly its sidecar's successes, each as ``key.jpg/.txt/.json``, the text
    its caption and the JSON its row; and webdataset reads every shard back."""
    import webdataset as wds

    for sidecar in sorted(out.glob("[0-9]*.parquet")):
        rows = {row["key"]: row for row in pq.read_table(sidecar).to_pylist()}
        successes = {key for key, row in rows.items() if row["status"] == "success"}
        with tarfile.open(sidecar.with_suffix(".tar")) as tar:
            names = tar.getnames()
            members = {}
            for name in names:
                key, _, ext = name.partition(".")
                members.setdefault(key, set()).add(ext)
            assert members == dict.fromkeys(successes, {"jpg", "txt", "json"})
            for key in successes:
                text = tar.extractfile(f"{key}.txt").read().decode()
                meta = json.load(tar.extractfile(f"{key}.json"))
                assert text == rows[key]["caption"] and meta["url"] == rows[key]["url"]
                assert meta["status"] == "success" and meta["width"] == 32
        samples = list(wds.WebDataset(str(sidecar.with_suffix(".tar")), shardshuffle=False))
        assert sorted(s["__key__"] for s in samples) == sorted(successes)
        assert all(s["jpg"][:2] == b"\xff\xd8" for s in samples)


def image_requests(web, host: int) -> list:
    return [r for r in web.requests(host=host) if r.path != "/robots.txt"]


@pytest.fixture(autouse=True)
def fresh(web):
    web.reset()
    yield
    web.delay, web.fail_429, web.fail_503, web.retry_after = 0.0, 1, 2, "1"
    for i in range(web.hosts):
        web.set_robots(i, None)
    assert web.canary_hits == 0


def test_each_host_gets_at_most_two_requests_at_once_spaced_by_the_delay(web, tmp_path):
    web.delay = 1.0  # longer than two delays: without the cap a third request would overlap
    urls = [web.url(h, f"/img/h{h}-{i}.jpg") for i in range(12) for h in range(8)]
    # 32 threads: more than the hosts' 8 x 2 slots, so the cap binds and not the threads
    run = download(web, tmp_path, urls, threads=32, host_concurrency=2, host_delay=0.4)
    assert run.stats["kept"] == 96 and run.stats["shards"] == 2
    assert all(run.kept(url) for url in urls)
    for host in range(8):
        got = image_requests(web, host)
        assert len(got) == 12 and all(r.status == 200 for r in got)
        trimmed = [dataclasses.replace(r, end=r.end - JITTER) for r in got]  # see JITTER
        assert peak_concurrency(trimmed) == 2  # the cap is reached, never passed
        assert least_spacing(got) >= 0.4 - JITTER
        starts = sorted(r.start for r in got)  # and no burst: the k-th start is k delays on
        assert all(b - starts[0] >= k * 0.4 - JITTER for k, b in enumerate(starts))
        assert len(web.requests(host=host, path="/robots.txt")) == 1


def test_robots_txt_is_obeyed_before_any_request(web, tmp_path):
    web.set_robots(0, "User-agent: *\nDisallow: /private/\n")
    web.set_robots(1, 500)  # unreachable: nothing on the host is fetched
    web.set_robots(2, None)  # 404: everything may be fetched
    web.set_robots(3, "User-agent: *\nCrawl-delay: 1\n")
    private = [web.url(0, f"/private/p{i}.jpg") for i in range(3)]
    public = [web.url(0, f"/img/a{i}.jpg") for i in range(3)]
    closed = [web.url(1, f"/img/b{i}.jpg") for i in range(3)]
    open_ = [web.url(2, f"/img/c{i}.jpg") for i in range(3)]
    slow = [web.url(3, f"/img/d{i}.jpg") for i in range(3)]
    run = download(web, tmp_path, private + public + closed + open_ + slow)
    assert all(run.reason(url) == ROBOTS_DISALLOWED for url in private + closed)
    assert all(run.kept(url) for url in public + open_ + slow)
    assert run.stats["dropped"] == {ROBOTS_DISALLOWED: 6}
    assert not [r for r in web.requests(host=0) if r.path.startswith("/private/")]
    assert [r.path for r in web.requests(host=1)] == ["/robots.txt"]
    for host in range(4):
        assert len(web.requests(host=host, path="/robots.txt")) == 1
    assert least_spacing(image_requests(web, 3)) >= 1.0 - JITTER  # Crawl-delay, not our 0.05
    assert least_spacing(image_requests(web, 2)) < 1.0 - JITTER  # (the delay is that host's)


def test_without_robots_no_robots_txt_is_asked_for(web, tmp_path):
    web.set_robots(0, "User-agent: *\nDisallow: /\n")
    urls = [web.url(0, "/private/p.jpg"), web.url(1, "/img/a.jpg")]
    run = download(web, tmp_path, urls, robots=False)
    assert all(run.kept(url) for url in urls)
    assert web.requests(path="/robots.txt") == []


def test_429_and_503_are_retried_after_the_wait_the_server_asks(web, tmp_path):
    web.fail_429, web.fail_503, web.retry_after = 1, 2, "1"
    urls = [web.url(0, "/429/a.jpg"), web.url(1, "/503/b.jpg")]
    run = download(web, tmp_path, urls, retries=2)
    assert all(run.kept(url) for url in urls) and run.stats["dropped"] == {}
    first, second = web.requests(host=0, path="/429/a.jpg")
    assert (first.status, second.status) == (429, 200)
    assert second.start - first.start >= 1.0  # Retry-After: 1, from before the answer came
    assert [r.status for r in web.requests(host=1, path="/503/b.jpg")] == [503, 503, 200]


def test_without_retries_429_and_503_end_as_their_reasons(web, tmp_path):
    urls = [web.url(0, "/429/a.jpg"), web.url(1, "/503/b.jpg")]
    run = download(web, tmp_path, urls, retries=0)
    assert run.reason(urls[0]) == RATE_LIMITED and run.reason(urls[1]) == SERVER_UNAVAILABLE
    assert run.stats["dropped"] == {RATE_LIMITED: 1, SERVER_UNAVAILABLE: 1}
    assert len(web.requests(path="/429/a.jpg")) == len(web.requests(path="/503/b.jpg")) == 1
    assert run.stats["failures_by_host"] == {web.names[0]: 1, web.names[1]: 1}


class _RobotsLoop(BaseHTTPRequestHandler):
    """/robots.txt redirects to itself; anything else is an image."""

    def do_GET(self):
        if self.path == "/robots.txt":
            self.send_response(302)
            self.send_header("Location", "/robots.txt")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = image_bytes("loop")
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_robots_txt_redirecting_to_itself_does_not_hang_the_shard(tmp_path):
    """The robots.txt fetch follows its redirects without asking for robots.txt rules (which
    it is fetching: that waited on itself for ever)."""
    server = ThreadingHTTPServer(("127.0.0.24", 0), _RobotsLoop)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    port = server.server_address[1]
    url = f"http://loop.{DOMAIN}:{port}/img/a.jpg"
    config = DownloadConfig(
        image_size=32, processes=1, threads=2, timeout=3, resolve=[f"loop.{DOMAIN}:127.0.0.24"]
    )
    safety = SafetyConfig(allowed_ports=[port], allow_networks=[f"127.0.0.24:{port}"])
    table = pairs_table("a loop", urls=[url])
    found = {}
    run = threading.Thread(
        target=lambda: found.update(download_stage(table, str(tmp_path), config, safety)),
        daemon=True,  # a hung stage must not hold up the test session's exit
    )
    try:
        run.start()
        run.join(30)
    finally:
        server.shutdown()
        server.server_close()
    assert not run.is_alive(), "the shard hung on a robots.txt redirect loop"
    assert found["kept"] == 1  # too many redirects: robots.txt unavailable, all allowed
