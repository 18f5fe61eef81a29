"""robots.txt: the rules for our token, the status table, the size cap, one fetch per origin
under concurrency, and resume from the output's _robots folder. The fetcher is the input here
(a recording function); the parsing is real protego and the cache writes real files."""

import json
import threading
import time

import pytest

from vlcurate.pipeline.download.robots import (
    PARSED,
    ROBOTS_DISALLOWED,
    ROBOTS_MAX_BYTES,
    UNAVAILABLE,
    UNREACHABLE,
    RobotsCache,
    RobotsRules,
    origin,
    robots_url,
)

SITE = "https://img.example.com"
ROBOTS = b"""User-agent: *
Disallow: /
Crawl-delay: 10

User-agent: vlcurate
Disallow: /private/
Allow: /private/ok.jpg
Crawl-delay: 2.5

User-agent: quietbot
Disallow: /x/
"""


class Recorder:
    """A fetcher that answers from a table of ``url -> (status, body)`` and records each call."""

    def __init__(self, answers=None, default=(404, b""), delay=0.0, error=None):
        self.answers, self.default, self.delay, self.error = answers or {}, default, delay, error
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, url):
        with self._lock:
            self.calls.append(url)
        time.sleep(self.delay)  # widens the window in which a second fetch could start
        if self.error is not None:
            raise self.error
        return self.answers.get(url, self.default)


def test_our_group_applies_and_others_get_the_star_group():
    ours = RobotsRules.from_answer(200, ROBOTS, "vlcurate")
    assert ours.kind == PARSED
    assert ours.allowed(f"{SITE}/a/cat.jpg")
    assert not ours.allowed(f"{SITE}/private/dog.jpg")
    assert ours.allowed(f"{SITE}/private/ok.jpg")  # the longer Allow wins
    assert ours.allowed(f"{SITE}/robots.txt")
    other = RobotsRules.from_answer(200, ROBOTS, "somebot")
    assert not other.allowed(f"{SITE}/a/cat.jpg")
    assert RobotsRules.from_answer(200, ROBOTS, "VLCurate").allowed(f"{SITE}/a/cat.jpg")


def test_crawl_delay_comes_from_the_group_that_applies():
    assert RobotsRules.from_answer(200, ROBOTS, "vlcurate").crawl_delay == 2.5
    assert RobotsRules.from_answer(200, ROBOTS, "somebot").crawl_delay == 10
    assert RobotsRules.from_answer(200, ROBOTS, "quietbot").crawl_delay is None  # its own group
    assert RobotsRules.from_answer(200, b"User-agent: *\nDisallow:\n").crawl_delay is None
    assert RobotsRules.from_answer(404, b"").crawl_delay is None
    assert RobotsRules.from_answer(None, None).crawl_delay is None


EVERYTHING = b"User-agent: *\nDisallow: /\n"


@pytest.mark.parametrize(
    "status, kind",
    [
        (404, UNAVAILABLE),
        (410, UNAVAILABLE),
        (403, UNAVAILABLE),  # as Google does: 401/403 are "missing", not "forbidden"
        (401, UNAVAILABLE),
        (308, UNAVAILABLE),  # a redirect left over: too many hops, treated as not found
        (500, UNREACHABLE),
        (503, UNREACHABLE),
        (429, UNREACHABLE),  # rate-limited counts as the server failing
        (None, UNREACHABLE),  # timeout, refused, DNS, too large
        (204, PARSED),
    ],
)
def test_the_status_decides_for_the_whole_origin(status, kind):
    """A 4xx's body (often an HTML page) is never parsed: Disallow: / in it changes nothing."""
    rules = RobotsRules.from_answer(status, EVERYTHING)
    assert rules.kind == kind
    expected = kind == UNAVAILABLE
    assert rules.allowed(f"{SITE}/a.jpg") is expected
    assert rules.allowed(f"{SITE}/") is expected


def test_an_empty_or_html_robots_txt_allows_everything():
    assert RobotsRules.from_answer(200, b"").allowed(f"{SITE}/a.jpg")
    assert RobotsRules.from_answer(200, None).allowed(f"{SITE}/a.jpg")
    html = b"<html><body><h1>Welcome</h1><p>Disallow nothing</p></body></html>"
    assert RobotsRules.from_answer(200, html).allowed(f"{SITE}/a.jpg")


def padding(head: bytes, upto: int) -> bytes:
    """Comment lines after ``head`` that make the body exactly ``upto`` bytes long."""
    line = b"# " + b"x" * 97 + b"\n"
    body = head + line * ((upto - len(head)) // len(line))
    body += b"#" * (upto - len(body) - 1) + b"\n"
    assert len(body) == upto
    return body


def test_rules_after_the_size_cap_are_ignored():
    head = b"User-agent: *\nDisallow: /early/\n"
    body = padding(head, ROBOTS_MAX_BYTES) + b"Disallow: /late/\n"
    rules = RobotsRules.from_answer(200, body)
    assert not rules.allowed(f"{SITE}/early/a.jpg")
    assert rules.allowed(f"{SITE}/late/a.jpg")
    assert len(rules.text.encode()) <= ROBOTS_MAX_BYTES
    # The control: the same rule inside the cap applies.
    assert not RobotsRules.from_answer(200, head + b"Disallow: /late/\n").allowed(
        f"{SITE}/late/a.jpg"
    )


def test_a_line_cut_by_the_cap_is_dropped_not_shortened():
    """Cut after "Allow: /", the line would allow every URL; dropped, Disallow: / stands."""
    head = b"User-agent: *\nDisallow: /\n"
    body = padding(head, ROBOTS_MAX_BYTES - len(b"Allow: /")) + b"Allow: /images/only.jpg\n"
    assert body[:ROBOTS_MAX_BYTES].endswith(b"Allow: /")
    rules = RobotsRules.from_answer(200, body)
    assert not rules.allowed(f"{SITE}/other.jpg")
    assert "Allow" not in rules.text.splitlines()[-1]


def test_a_body_that_is_not_utf8_still_parses():
    body = b"\xef\xbb\xbfUser-agent: *\nDisallow: /caf\xe9/\nDisallow: /tmp/\n\xff\xfe\n"
    rules = RobotsRules.from_answer(200, body)
    assert not rules.allowed(f"{SITE}/tmp/a.jpg")  # the line after the bad bytes applies
    assert rules.allowed(f"{SITE}/a.jpg")
    assert "\ufffd" in rules.text
    assert not rules.text.startswith("\ufeff")  # the BOM does not spoil the first line
    again = RobotsRules.from_json(json.loads(json.dumps(rules.to_json())), "vlcurate")
    assert again == rules


@pytest.mark.parametrize(
    "url, expected",
    [
        ("http://Example.COM/a.jpg", "http://example.com:80"),
        ("https://example.com", "https://example.com:443"),
        ("HTTPS://example.com:443/x?y#z", "https://example.com:443"),
        ("http://example.com:8080/a", "http://example.com:8080"),
        ("https://example.com:80/a", "https://example.com:80"),
        ("http://user@example.com/a", "http://example.com:80"),
        ("http://[2001:db8::1]:8443/a", "http://[2001:db8::1]:8443"),
        ("https://bücher.example/a.jpg", "https://bücher.example:443"),  # IDN as given
        ("https://xn--bcher-kva.example/a.jpg", "https://xn--bcher-kva.example:443"),
    ],
)
def test_origin(url, expected):
    assert origin(url) == expected


@pytest.mark.parametrize("url", ["ftp://example.com/a", "/relative/a.jpg", "http:///a.jpg"])
def test_origin_refuses_what_is_not_an_http_url(url):
    with pytest.raises(ValueError):
        origin(url)


def test_robots_url_leaves_out_only_the_default_port():
    assert robots_url("https://example.com:443") == "https://example.com/robots.txt"
    assert robots_url("http://example.com:80") == "http://example.com/robots.txt"
    assert robots_url("https://example.com:80") == "https://example.com:80/robots.txt"
    assert robots_url("http://[2001:db8::1]:8443") == "http://[2001:db8::1]:8443/robots.txt"


def test_one_fetch_per_origin_and_each_origin_its_own():
    fetch = Recorder({"https://a.example/robots.txt": (200, ROBOTS)})
    cache = RobotsCache(fetch, "vlcurate")
    assert not cache.allowed("https://a.example/private/1.jpg")
    assert cache.allowed("https://A.example:443/2.jpg")
    assert cache.allowed("http://a.example/private/1.jpg")  # another scheme: its own 404
    assert cache.allowed("https://a.example:8443/private/1.jpg")  # another port too
    assert fetch.calls == [
        "https://a.example/robots.txt",
        "http://a.example/robots.txt",
        "https://a.example:8443/robots.txt",
    ]
    assert cache.fetches == 3
    stats = cache.stats()
    assert stats["robots_parsed"] == 1 and stats["robots_unavailable"] == 2
    assert stats["robots_checked_allowed"] == 3
    assert stats[f"robots_checked_{ROBOTS_DISALLOWED}"] == 1


def run_threads(target, n=16):
    """Start ``n`` threads at once (a barrier); returns their results, all threads joined."""
    barrier = threading.Barrier(n)
    results = [None] * n

    def work(i):
        barrier.wait()
        results[i] = target()

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60  # generous: the work is one 0.3 s fetch
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "a caller is stuck"
    return results


def test_sixteen_threads_share_one_fetch():
    fetch = Recorder({"https://a.example/robots.txt": (200, ROBOTS)}, delay=0.3)
    cache = RobotsCache(fetch, "vlcurate")
    results = run_threads(lambda: cache.rules("https://a.example/private/x.jpg"))
    assert fetch.calls == ["https://a.example/robots.txt"]
    assert all(r is results[0] for r in results)
    assert not results[0].allowed("https://a.example/private/x.jpg")


def test_a_fetch_that_raises_disallows_and_releases_every_waiter(tmp_path):
    fetch = Recorder(delay=0.3, error=RuntimeError("fetcher bug"))
    cache = RobotsCache(fetch, "vlcurate", str(tmp_path))
    results = run_threads(lambda: cache.allowed("https://a.example/x.jpg"))
    assert results == [False] * 16
    assert fetch.calls == ["https://a.example/robots.txt"]
    assert cache.rules("https://a.example/").kind == UNREACHABLE
    assert cache.stats()["robots_fetch_errors"] == 1
    assert list(tmp_path.iterdir()) == []  # not an answer: a rerun asks again
    rerun = Recorder({"https://a.example/robots.txt": (404, b"")})
    assert RobotsCache(rerun, "vlcurate", str(tmp_path)).allowed("https://a.example/x.jpg")
    assert rerun.calls == ["https://a.example/robots.txt"]


def test_a_rerun_reuses_the_answers_kept_in_the_folder(tmp_path):
    folder = str(tmp_path / "_robots")
    answers = {
        "https://a.example/robots.txt": (200, ROBOTS),
        "https://b.example/robots.txt": (503, b"busy"),
        "https://c.example/robots.txt": (None, None),
    }
    first = RobotsCache(Recorder(answers), "vlcurate", folder)
    decisions = [first.allowed(f"https://{h}.example/private/x.jpg") for h in "abcd"]
    assert decisions == [False, False, False, True]
    assert len(list((tmp_path / "_robots").glob("*.json"))) == 4
    assert not list((tmp_path / "_robots").glob("*.tmp-*"))

    never = Recorder(error=AssertionError("fetched again"))
    second = RobotsCache(never, "vlcurate", folder)
    assert [second.allowed(f"https://{h}.example/private/x.jpg") for h in "abcd"] == decisions
    assert second.allowed("https://a.example/public.jpg")
    assert second.rules("https://a.example/").crawl_delay == 2.5
    assert never.calls == [] and second.fetches == 0 and second.reused == 4
    # The body is kept, not the verdict: another token reads the same file its own way.
    other = RobotsCache(never, "otherbot", folder)
    assert not other.allowed("https://a.example/public.jpg")
    assert other.rules("https://a.example/").crawl_delay == 10


def test_a_file_already_in_the_folder_wins_over_fetching(tmp_path):
    """As when another process fetched this origin first."""
    elsewhere = RobotsCache(Recorder({"https://a.example/robots.txt": (200, EVERYTHING)}))
    theirs = elsewhere.rules("https://a.example/")
    here = RobotsCache(Recorder(default=(404, b"")), "vlcurate", str(tmp_path))
    path = here.path(origin("https://a.example/"))
    (tmp_path / path.rsplit("/", 1)[-1]).write_text(
        json.dumps({"origin": "https://a.example:443", **theirs.to_json()})
    )
    assert not here.allowed("https://a.example/x.jpg")
    assert here.fetches == 0


def test_another_process_answer_written_during_our_fetch_is_taken(tmp_path):
    """Both fetched; the file that landed first decides, so the two processes agree."""
    theirs = {
        "origin": "https://a.example:443",
        **RobotsRules.from_answer(200, EVERYTHING).to_json(),
    }

    def racing_fetch(url):
        (tmp_path / name).write_text(json.dumps(theirs))
        return 404, b""

    cache = RobotsCache(racing_fetch, "vlcurate", str(tmp_path))
    name = cache.path(origin("https://a.example/")).rsplit("/", 1)[-1]
    assert not cache.allowed("https://a.example/x.jpg")
    assert cache.fetches == 1
    assert json.loads((tmp_path / name).read_text()) == theirs


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        json.dumps({"origin": "https://a.example:443", "version": 1}),
        json.dumps(
            {"origin": "https://z.example:443", **RobotsRules.from_answer(404, b"").to_json()}
        ),
    ],
)
def test_an_unreadable_or_foreign_file_is_fetched_again(tmp_path, content):
    fetch = Recorder(default=(200, EVERYTHING))
    cache = RobotsCache(fetch, "vlcurate", str(tmp_path))
    name = cache.path(origin("https://a.example/")).rsplit("/", 1)[-1]
    (tmp_path / name).write_text(content)
    assert not cache.allowed("https://a.example/x.jpg")
    assert fetch.calls == ["https://a.example/robots.txt"]
    assert json.loads((tmp_path / name).read_text())["status"] == 200  # replaced


def test_the_folder_may_be_an_fsspec_url():
    folder = "memory://vlcurate-test-robots/_robots"
    RobotsCache(Recorder(default=(200, EVERYTHING)), "vlcurate", folder).rules("http://a.example/")
    again = RobotsCache(Recorder(error=AssertionError("fetched again")), "vlcurate", folder)
    assert not again.allowed("http://a.example/x.jpg")


def test_the_json_round_trip():
    for status, body in [(200, ROBOTS), (404, b"gone"), (None, None), (429, b"")]:
        rules = RobotsRules.from_answer(status, body, "vlcurate")
        again = RobotsRules.from_json(json.loads(json.dumps(rules.to_json())), "vlcurate")
        assert again == rules and again.kind == rules.kind
    with pytest.raises(ValueError):
        RobotsRules.from_json({"version": 99, "status": 200, "body": "", "fetched_at": 0})


@pytest.mark.parametrize("token", ["", "vlcurate/1.0", "my bot", "bot*"])
def test_a_token_that_no_robots_txt_could_name_is_refused(token):
    with pytest.raises(ValueError):
        RobotsCache(Recorder(), token)
