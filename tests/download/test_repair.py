"""``curate download --repair`` against the hostile loopback web: the transient failures of a
finished download (503s, timeouts, dropped connections) are asked again into new shards beside
the old ones, and nothing else is: not a 404, not a body over the cap, not a robots.txt refusal.
The stats add up to the candidates, no image is in two tars, and a repair with nothing left to do
writes nothing."""

import json
import tarfile

import pyarrow.parquet as pq
import pytest

from tests.download.hostile import HostileWeb
from tests.pairs import pairs_table
from vlcurate.jobs.download import main
from vlcurate.pipeline.download import fetch, repair
from vlcurate.pipeline.download.politeness import SERVER_UNAVAILABLE
from vlcurate.pipeline.download.robots import ROBOTS_DISALLOWED

TRANSIENT = ["/503/a.jpg", "/503/b.jpg", "/drop", "/img/c.jpg"]
LASTING = ["/status/404", "/huge", "/private/d.jpg"]


@pytest.fixture
def web():
    with HostileWeb(hosts=2, fail_503=1) as web:
        web.set_robots(1, "User-agent: *\nDisallow: /private/\n")
        yield web


def urls_of(web, transient: bool = True) -> list[str]:
    """Good images on both hosts, the transient failures on host 0, the lasting ones on host 1.
    Every image is answered after ``web.delay`` (past the deadline in a first run)."""
    good = [web.url(i % 2, f"/img/good{i}.jpg") for i in range(6)]
    flaky = [web.url(0, p) for p in TRANSIENT] if transient else []
    return good + flaky + [web.url(1, p) for p in LASTING]


def run(web, out, *more, transient: bool = True) -> int:
    candidates = out.parent / "candidates.parquet"
    urls = urls_of(web, transient)
    pq.write_table(pairs_table(*(f"picture {i}" for i in range(len(urls))), urls=urls), candidates)
    argv = ["--input", str(candidates), "--output", str(out), "--allow-private-network"]
    argv += ["127.0.0.16/28", "--allowed-ports", str(web.port), "--resolve", *web.resolve]
    argv += ["--processes", "1", "--threads", "8"]
    argv += ["--samples-per-shard", "5", "--timeout", "2", "--retries", "0"]
    argv += ["--max-image-bytes", "1000000", "--image-size", "32", "--host-delay", "0"]
    return main(argv + list(more))


def tar_keys(out) -> list[str]:
    keys = []
    for path in sorted(out.glob("*.tar")):
        with tarfile.open(path) as tar:
            keys += [m.name.rsplit(".", 1)[0] for m in tar.getmembers() if m.name.endswith(".jpg")]
    return keys


def test_repair_recovers_the_transient_failures_and_nothing_else(web, tmp_path):
    out = tmp_path / "shards"
    web.delay = 3.0  # every image answer comes after the 2 s deadline ...
    assert run(web, out) == 0
    first = json.loads((out / "stats.json").read_text())
    assert first["kept"] == 0 and first["in"] == len(urls_of(web))
    assert first["dropped"][ROBOTS_DISALLOWED] == 1 and first["dropped"][fetch.TOO_LARGE_BODY] == 1
    assert first["dropped"]["http_404"] == 1
    web.delay = 0.0  # ... and now at once; the 503 paths answered 503 once and now the image
    seen = len(web.requests())  # (web.reset() would reset the 503 paths too)
    old = {p.name: p.stat().st_mtime_ns for p in out.glob("0000*")}

    assert run(web, out, "--repair") == 0
    asked = {r.path for r in web.requests()[seen:]}
    assert not asked & set(LASTING), "a lasting failure was asked again"
    assert set(TRANSIENT) <= asked
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("0000*") if p.name in old} == old
    second = json.loads((out / "stats.json").read_text())
    assert second["in"] == first["in"] == second["kept"] + sum(second["dropped"].values())
    assert second["kept"] == 6 + 3  # the good ones and a, b, c; /drop never answers
    assert second["dropped"] == {
        fetch.CONNECTION_RESET: 1,
        ROBOTS_DISALLOWED: 1,
        fetch.TOO_LARGE_BODY: 1,
        "http_404": 1,
    }
    assert SERVER_UNAVAILABLE not in second["dropped"] and fetch.TIMEOUT not in second["dropped"]
    keys = tar_keys(out)
    assert len(keys) == len(set(keys)) == second["kept"]  # no image in two tars
    (round_,) = repair.rounds(str(out))
    assert round_.rows == len(TRANSIENT) + 6  # the six good ones timed out too

    seen = len(web.requests())  # a third pass: only /drop is left, and it fails the same way
    assert run(web, out, "--repair") == 0
    assert {r.path for r in web.requests()[seen:]} == {"/drop"}
    third = json.loads((out / "stats.json").read_text())
    assert (third["in"], third["kept"], third["dropped"]) == (
        second["in"],
        second["kept"],
        second["dropped"],
    )


def test_a_repair_with_nothing_transient_left_does_nothing(web, tmp_path, capsys):
    out = tmp_path / "shards"
    assert run(web, out, transient=False) == 0
    dropped = json.loads((out / "stats.json").read_text())["dropped"]
    assert set(dropped) == {ROBOTS_DISALLOWED, fetch.TOO_LARGE_BODY, "http_404"}
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    web.reset()
    capsys.readouterr()
    assert run(web, out, "--repair", transient=False) == 0
    assert "nothing to repair" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before
    assert web.requests() == []


def test_repair_refuses_an_unfinished_download(web, tmp_path, capsys):
    out = tmp_path / "shards"
    assert run(web, out, "--repair") == 2
    assert "not done" in capsys.readouterr().err
    assert not (out / repair.REPAIR).exists()


def test_a_host_whose_robots_txt_timed_out_is_asked_again_by_the_repair(web, tmp_path):
    out = tmp_path / "shards"
    web.set_robots(0, "slow")  # robots.txt dripped a byte a second: past the 2 s deadline
    assert run(web, out, transient=False) == 0
    first = json.loads((out / "stats.json").read_text())
    assert first["dropped"][fetch.TIMEOUT] == 3  # host 0's good images: its robots.txt timed out
    assert web.requests(host=0, path="/img/good0.jpg") == []  # none asked without robots.txt
    web.set_robots(0, None)  # now a 404: everything allowed
    assert run(web, out, "--repair", transient=False) == 0
    second = json.loads((out / "stats.json").read_text())
    assert fetch.TIMEOUT not in second["dropped"] and second["kept"] == 6
    assert len(web.requests(host=0, path="/robots.txt")) == 2  # the failed answer was not kept
