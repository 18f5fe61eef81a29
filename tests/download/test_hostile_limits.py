"""The download stage end to end against the hostile loopback web: whole-request deadlines, body
caps with bounded memory, redirects that never reach the canary, block and opt-out lists, and
X-Robots-Tag. Helpers and the politeness / robots.txt / retry tests: ``test_hostile_download.py``."""

import hashlib
import time

import pytest

from tests.download.hostile import (
    module_web,  # noqa: F401 - the `web` fixture
)
from tests.download.test_hostile_download import download, safety_for
from vlcurate.pipeline.download.client import ROBOTS_OPT_OUT, TOO_MANY_REDIRECTS
from vlcurate.pipeline.download.fetch import TIMEOUT, TOO_LARGE_BODY
from vlcurate.pipeline.download.lists import BLOCKLISTED, OPTED_OUT
from vlcurate.pipeline.download.safety import (
    PORT_NOT_ALLOWED,
    PRIVATE_ADDRESS,
    UNSAFE_SCHEME,
    SafetyConfig,
)

CAP = 1_000_000


@pytest.fixture(autouse=True)
def fresh(web):
    web.reset()
    yield
    assert web.canary_hits == 0, web.canary_log()


def wait_for(predicate, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "the web never got there"
        time.sleep(0.05)


def memory_kb() -> dict[str, int]:
    """This process's peak (VmHWM) and current (VmRSS) resident memory, in kB."""
    with open("/proc/self/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return {key: int(fields[key].split()[0]) for key in ("VmHWM", "VmRSS")}


def test_slow_and_endless_answers_end_at_the_deadline_in_bounded_memory(web, tmp_path):
    urls = {
        "slow-body": web.url(0, "/slow-body"),  # a byte a second, for ever
        "slow-headers": web.url(1, "/slow-headers"),  # the headers at two bytes a second
        "huge": web.url(2, "/huge"),  # Content-Length: 10 GiB
        "huge-unsized": web.url(3, "/huge-unsized"),  # zeros until the client goes
        "fine": web.url(4, "/img/fine.jpg"),
    }
    download(web, tmp_path, [web.url(4, "/img/warm.jpg")], name="warm")  # imports, threads, pools
    web.reset()
    before = memory_kb()
    run = download(web, tmp_path, list(urls.values()), timeout=3, max_image_bytes=CAP)
    after = memory_kb()
    assert run.reason(urls["slow-body"]) == run.reason(urls["slow-headers"]) == TIMEOUT
    assert run.reason(urls["huge"]) == run.reason(urls["huge-unsized"]) == TOO_LARGE_BODY
    assert run.kept(urls["fine"])
    assert run.stats["dropped"] == {TIMEOUT: 2, TOO_LARGE_BODY: 2}
    wait_for(lambda: all(r.end is not None for r in web.requests()))
    for slow in (
        web.requests(host=0, path="/slow-body"),
        web.requests(host=1, path="/slow-headers"),
    ):
        # The server's view: its writes fail a second or two after the client went at 3 s.
        assert slow[0].end - slow[0].start < 3 + 5
    (huge,) = web.requests(host=2, path="/huge")
    assert huge.sent < 64 * 2**20  # refused on its headers: what the socket buffers took
    (unsized,) = web.requests(host=3, path="/huge-unsized")
    assert CAP <= unsized.sent < 64 * 2**20  # read to the cap, then the client closed
    for key in ("VmHWM", "VmRSS"):
        assert after[key] - before[key] < 200 * 1024, (key, before, after)


@pytest.mark.parametrize("allowance", ["address and port", "network"])
def test_redirects_never_reach_the_canary(web, tmp_path, allowance):
    """Every redirect hop is checked before it is made. ``address and port``: the hosts'
    addresses on the web's port only, so a redirect to another port of an allowed host passes
    the URL checks and is refused where the fetcher connects; ``network``: the hosts' network on
    any port, and a redirect to another port is refused by the URL port list."""
    safety = safety_for(web)
    if allowance == "network":
        safety = SafetyConfig(allowed_ports=[web.port], allow_networks=["127.0.0.16/28"])
    evil = f"http://evil.example-cdn.com:{web.port}"  # a public-looking name pinned to 127.0.0.1
    cases = {
        web.redirect_url(0, web.canary_url()): PRIVATE_ADDRESS,
        web.redirect_url(0, web.canary_url(port=web.port)): PRIVATE_ADDRESS,
        web.redirect_url(1, web.canary_url(host=2)): (
            PRIVATE_ADDRESS if allowance == "address and port" else PORT_NOT_ALLOWED
        ),
        web.redirect_url(1, f"ftp://127.0.0.1:{web.canary_port}/x.jpg"): UNSAFE_SCHEME,
        web.redirect_url(2, f"//127.0.0.1:{web.canary_port}/x.jpg", code=301): PRIVATE_ADDRESS,
        web.redirect_url(2, f"{evil}/img/e.jpg", code=307): PRIVATE_ADDRESS,
        f"{evil}/img/e.jpg": PRIVATE_ADDRESS,  # a pin is checked as DNS is (robots.txt too)
        web.url(3, "/redirect-chain/6"): TOO_MANY_REDIRECTS,  # 6 > max_redirects
    }
    followed = [
        web.url(3, "/redirect-chain/5"),  # exactly max_redirects: followed to the image
        web.redirect_url(4, web.url(5, "/img/elsewhere.jpg"), code=308),  # another host
    ]
    resolve = [*web.resolve, "evil.example-cdn.com:127.0.0.1"]
    run = download(web, tmp_path, [*cases, *followed], safety, resolve=resolve, max_redirects=5)
    assert {url: run.reason(url) for url in cases} == cases
    assert all(run.kept(url) for url in followed)
    assert web.canary_hits == 0, web.canary_log()
    assert len(web.requests(host=3, path="/redirect-chain/1")) == 2  # both chains got there
    assert len(web.requests(host=3, path="/redirect-chain/0")) == 1  # only the short one on
    assert [r.status for r in web.requests(host=5)] == [404, 200]  # robots.txt, then the image


@pytest.fixture(scope="module")
def listed(web, tmp_path_factory):
    """One run with a block list (a URL's SHA-256, an image's MD5) and an opt-out list (a
    domain, a URL prefix on another host): ``(run, the listed URLs, the paths requested)``."""
    web.reset()
    tmp_path = tmp_path_factory.mktemp("listed")
    urls = {
        "by_url": web.url(0, "/img/listed-url.jpg"),
        "by_content": web.url(0, "/img/listed-bytes.jpg"),
        "opted_domain": web.url(1, "/img/anything.jpg"),
        "opted_prefix": web.url(2, "/img/opted/one.jpg"),
    }
    kept = [web.url(0, "/img/a.jpg"), web.url(2, "/img/b.jpg"), web.url(3, "/img/c.jpg")]
    blocklist = tmp_path / "blocklist.txt"
    blocklist.write_text(
        "# a URL's SHA-256 and an image's MD5\n"
        f"{hashlib.sha256(urls['by_url'].encode()).hexdigest()}\n"
        f"{hashlib.md5(web.image_bytes('listed-bytes')).hexdigest()}\n"
    )
    opt_out = tmp_path / "opt-out.txt"
    opt_out.write_text(f"{web.names[1]}\n{web.url(2, '/img/opted/')}\n")
    lists = {"blocklist": [str(blocklist)], "opt_out": [str(opt_out)]}
    run = download(web, tmp_path, [*urls.values(), *kept], **lists)
    return run, urls, kept, [r.path for r in web.requests()]


def traces(run, urls) -> list[tuple[str, str]]:
    """``(what, file)`` for every file under the output holding a block-listed URL, or the
    caption of the image listed by its bytes."""
    caption = run.table.column("caption")[1].as_py()  # the content match's
    secrets = {"url": urls["by_url"], "content url": urls["by_content"], "caption": caption}
    return [
        (what, str(path.relative_to(run.out)))
        for path in sorted(p for p in run.out.rglob("*") if p.is_file())
        for what, secret in secrets.items()
        if secret.encode() in path.read_bytes()
    ]


def test_listed_urls_are_never_asked_for_and_listed_images_are_never_written(listed):
    run, urls, kept, paths = listed
    assert run.stats["dropped"] == {BLOCKLISTED: 2, OPTED_OUT: 2}
    assert all(run.kept(url) for url in kept)
    assert run.reason(urls["by_content"]) == BLOCKLISTED
    assert "/img/listed-bytes.jpg" in paths  # a content match can only be known by fetching
    for never in ("/img/listed-url.jpg", "/img/anything.jpg", "/img/opted/one.jpg"):
        assert never not in paths
    assert [t for t in traces(run, urls) if t[1] != "_input/urls.parquet"] == []


def test_the_url_list_keeps_no_trace_of_an_image_listed_by_its_bytes(listed):
    run, urls, _, _ = listed
    assert traces(run, urls) == []


def test_an_image_whose_x_robots_tag_says_noai_is_not_kept(web, tmp_path):
    urls = [web.url(0, "/noai/tagged.jpg"), web.url(0, "/img/untagged.jpg")]
    run = download(web, tmp_path, urls)
    assert run.reason(urls[0]) == ROBOTS_OPT_OUT and run.kept(urls[1])
    assert run.stats["dropped"] == {ROBOTS_OPT_OUT: 1}
    assert len(web.requests(host=0, path="/noai/tagged.jpg")) == 1
