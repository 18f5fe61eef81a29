"""The hostile web answers as the download tests expect: each path, the records, the canary, the
per-host addresses and names, and a close that no hung client can hold up. Stdlib clients only."""

import http.client
import io
import socket
import threading
import time

import pytest
from PIL import Image

from tests.download.hostile import (
    HUGE,
    SLOW_BODY,
    HostileWeb,
    image_bytes,
    least_spacing,
    module_web,  # noqa: F401 - the `web` fixture
    peak_concurrency,
)


@pytest.fixture(autouse=True)
def fresh(web):
    web.reset()


def get(web, path, host=0, timeout=5.0, headers=None):
    """``(response, body)`` of one GET to host ``host``'s address, naming it in Host."""
    conn = http.client.HTTPConnection(web.addresses[host], web.port, timeout=timeout)
    conn.request("GET", path, headers={"Host": web.names[host], **(headers or {})})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response, body


def wait_for(predicate, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "the web never got there"
        time.sleep(0.02)


def drain(sock, quiet=0.4, most=10.0):
    """What ``sock`` sends until it falls quiet for ``quiet`` s (or ``most`` s pass)."""
    sock.settimeout(quiet)
    got, end = b"", time.monotonic() + most
    while time.monotonic() < end:
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            break
        if not chunk:
            break
        got += chunk
    return got


def test_every_host_has_its_own_address_and_name_on_one_port(web):
    assert web.hosts == 8 and len(set(web.addresses)) == 8
    assert web.resolve[0] == "host0.loopback-web.net:127.0.0.16"
    assert web.url(2, "/img/a.jpg") == f"http://host2.loopback-web.net:{web.port}/img/a.jpg"
    assert web.ip_url(7, "/x") == f"http://127.0.0.23:{web.port}/x"
    for i, pin in enumerate(web.resolve):
        name, address = pin.split(":")
        conn = http.client.HTTPConnection(address, web.port, timeout=5)
        conn.request("GET", f"/img/h{i}.jpg", headers={"Host": name})
        assert conn.sock.getpeername() == (f"127.0.0.{16 + i}", web.port)
        assert conn.getresponse().read() == image_bytes(f"h{i}")
        conn.close()
        (record,) = web.requests(host=i)
        assert (record.host_header, record.path, record.status) == (name, f"/img/h{i}.jpg", 200)


def test_images_are_small_deterministic_jpegs(web):
    response, body = get(web, "/img/red.jpg")
    assert response.status == 200 and response.getheader("Content-Type") == "image/jpeg"
    assert body == image_bytes("red") == web.image_bytes("red") != image_bytes("blue")
    assert 1000 < len(body) < 5000
    assert Image.open(io.BytesIO(body)).format == "JPEG"
    assert get(web, "/private/deep/er/red.jpg")[1] == body
    assert get(web, "/img/no/such.jpg")[0].status == 404


def test_every_request_is_recorded_from_request_line_to_last_byte(web):
    conn = http.client.HTTPConnection(web.addresses[1], web.port, timeout=5)
    for _ in range(2):  # kept alive: both on one connection
        conn.request("GET", "/img/a.jpg?x=1")
        conn.getresponse().read()
    conn.close()
    first, second = web.requests(host=1, path="/img/a.jpg")
    assert first.peer_port == second.peer_port and first.method == "GET"
    assert first.start <= first.end <= second.start <= second.end
    assert first.sent > len(image_bytes("a")) and first.status == 200
    assert web.requests(path="/img/a.jpg?x=1") == [first, second]
    assert web.requests(host=0) == []
    with socket.create_connection((web.addresses[2], web.port), timeout=5) as sock:
        sock.sendall(b"GET /img/b.jpg HTTP/1.1\r\n")  # the request line, no headers yet
        wait_for(lambda: web.requests(host=2))
        (pending,) = web.requests(host=2)
        assert pending.end is None and pending.status is None
        sock.sendall(b"Host: x\r\n\r\n")
        drain(sock)
    wait_for(lambda: web.requests(host=2)[0].end is not None)
    assert web.requests(host=2)[0].host_header == "x"


def test_concurrency_and_spacing_come_from_the_records(web):
    web.delay = 0.3
    barrier = threading.Barrier(4)

    def fetch(n):
        barrier.wait()
        get(web, f"/img/c{n}.jpg", host=3)

    threads = [threading.Thread(target=fetch, args=(n,)) for n in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        web.delay = 0.0
    records = web.requests(host=3)
    assert len(records) == 4 and peak_concurrency(records) >= 2
    assert least_spacing(records) < 0.3
    assert peak_concurrency(records[:1]) == 1 and least_spacing(records[:1]) == float("inf")


def test_robots_per_host(web):
    assert get(web, "/robots.txt", host=0)[0].status == 404
    web.set_robots(0, "User-agent: *\nDisallow: /private/\n")
    web.set_robots(1, 503)
    assert get(web, "/robots.txt", host=0)[1] == b"User-agent: *\nDisallow: /private/\n"
    assert get(web, "/robots.txt", host=1)[0].status == 503
    assert get(web, "/robots.txt", host=2)[0].status == 404
    web.set_robots(2, "slow")
    with socket.create_connection((web.addresses[2], web.port), timeout=5) as sock:
        sock.sendall(b"GET /robots.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        head, _, body = drain(sock).partition(b"\r\n\r\n")
        assert b"200 OK" in head and b"Content-Length: 26" in head
        assert 1 <= len(body) < 26  # the rest drips, a byte a second
    for i in range(3):
        web.set_robots(i, None)
    assert get(web, "/robots.txt", host=0)[0].status == 404


def test_slow_body_drips_a_byte_a_second(web):
    conn = http.client.HTTPConnection(web.addresses[0], web.port, timeout=5)
    conn.request("GET", "/slow-body")
    response = conn.getresponse()
    assert response.getheader("Content-Length") == str(SLOW_BODY)
    assert response.read(3) == image_bytes("slow-body")[:3]
    response.close()
    conn.close()
    wait_for(lambda: web.requests(path="/slow-body")[0].end is not None)


def test_slow_headers_drip_the_status_line(web):
    with socket.create_connection((web.addresses[0], web.port), timeout=5) as sock:
        sock.sendall(b"GET /slow-headers HTTP/1.1\r\nHost: x\r\n\r\n")
        got = drain(sock, quiet=0.8, most=1.5)
    assert 1 <= len(got) <= 5 and b"HTTP/1.1 200 OK".startswith(got)


@pytest.mark.parametrize("path", ["/huge", "/huge-unsized"])
def test_huge_bodies_stream_until_the_client_goes(web, path):
    conn = http.client.HTTPConnection(web.addresses[0], web.port, timeout=5)
    conn.request("GET", path)
    response = conn.getresponse()
    length = response.getheader("Content-Length")
    assert length == (str(HUGE) if path == "/huge" else None)
    if path == "/huge-unsized":
        assert response.getheader("Connection") == "close"
    body = response.read(2**20)
    assert body.startswith(b"\xff\xd8") and body.endswith(b"\0" * 1000)
    response.close()
    conn.close()
    wait_for(lambda: web.requests(path=path)[0].end is not None)
    assert 2**20 <= web.requests(path=path)[0].sent < HUGE


def test_redirects_are_verbatim(web):
    for target in ["/img/a.jpg", "//host1.loopback-web.net/x", "ftp://x/y.jpg", web.canary_url()]:
        response, _ = get(web, web.redirect_url(0, target).split(str(web.port), 1)[1])
        assert response.status == 302 and response.getheader("Location") == target
    response, _ = get(web, "/redirect?to=%2Fa&code=301")
    assert response.status == 301 and response.getheader("Location") == "/a"
    assert get(web, "/redirect")[0].status == 400
    path, hops = "/redirect-chain/3", []
    while (answer := get(web, path))[0].status == 302:
        path = answer[0].getheader("Location")
        hops.append(path)
    assert hops == ["/redirect-chain/2", "/redirect-chain/1", "/redirect-chain/0"]
    assert answer[1] == image_bytes("chain")


def test_429_and_503_fail_then_answer(web):
    first, _ = get(web, "/429/a.jpg")
    assert first.status == 429 and first.getheader("Retry-After") == "1"
    assert get(web, "/429/a.jpg")[1] == image_bytes("a")
    assert get(web, "/429/a.jpg", host=1)[0].status == 429  # counted per host and path
    assert get(web, "/429/b.jpg")[0].status == 429
    statuses = [get(web, "/503/a.jpg")[0] for _ in range(3)]
    assert [s.status for s in statuses] == [503, 503, 200]
    assert statuses[0].getheader("Retry-After") is None
    web.reset()
    web.fail_503 = 0
    try:
        assert get(web, "/503/a.jpg")[0].status == 200
    finally:
        web.fail_503 = 2
    assert get(web, "/429/a.jpg")[0].status == 429  # reset forgot the counts


def test_small_paths(web):
    response, body = get(web, "/noai/a.jpg")
    assert response.getheader("X-Robots-Tag") == "noai" and body == image_bytes("a")
    response, body = get(web, "/status/418")
    assert response.status == 418 and body == b"status 418\n"
    assert get(web, "/status/204")[1] == b""
    response, body = get(web, "/not-image.jpg")
    assert response.getheader("Content-Type") == "image/jpeg" and body.startswith(b"<html>")
    assert get(web, "/nowhere")[0].status == 404


def test_drop_reset_and_hang(web):
    with pytest.raises(http.client.RemoteDisconnected):
        get(web, "/drop")
    with pytest.raises(ConnectionResetError) as err:
        get(web, "/reset")
    assert not isinstance(err.value, http.client.RemoteDisconnected)
    with pytest.raises(TimeoutError):
        get(web, "/hang", timeout=0.5)
    assert [r.status for r in web.requests()] == [None, None, None]
    assert web.requests(path="/hang")[0].end is None  # still hanging


def test_the_canary_records_every_connection(web):
    assert web.canary_hits == 0
    socket.create_connection(("127.0.0.1", web.canary_port), timeout=5).close()
    assert web.canary_hits == 1
    for url in [web.canary_url("/x"), web.canary_url(port=web.port), web.canary_url(host=5)]:
        address, port = url.split("/")[2].rsplit(":", 1)
        address = dict(pin.split(":") for pin in web.resolve).get(address, address)
        conn = http.client.HTTPConnection(address, int(port), timeout=5)
        conn.request("GET", "/x")
        assert conn.getresponse().read() == b"canary\n"
        conn.close()
    log = web.canary_log()
    assert len(log) == web.canary_hits == 4
    assert [hit.address for hit in log] == ["127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.21"]
    assert log[0].data == b"" and all(hit.data.startswith(b"GET /x ") for hit in log[1:])
    assert web.canary_port != web.port and web.requests() == []


def test_close_is_not_held_up_by_hung_clients():
    before = threading.active_count()
    web = HostileWeb(hosts=2).__enter__()
    socks = [socket.create_connection((web.addresses[1], web.port), timeout=5) for _ in range(5)]
    requests = [b"GET /hang HTTP/1.1\r\n\r\n", b"GET /slow-body HTTP/1.1\r\n\r\n"]
    requests += [b"GET /huge HTTP/1.1\r\n\r\n", b"GET /img/a.jpg HTTP/1.1\r\n\r\n", b"GET /im"]
    for sock, request in zip(socks, requests, strict=True):
        sock.sendall(request)  # the /huge client never reads: the server blocks writing
    canary = socket.create_connection(("127.0.0.1", web.canary_port), timeout=5)
    wait_for(lambda: len(web.requests()) == 4)
    closer = threading.Thread(target=web.close, daemon=True)
    closer.start()
    closer.join(timeout=5)
    assert not closer.is_alive()
    wait_for(lambda: threading.active_count() <= before)  # every handler has ended
    with pytest.raises(OSError):
        socket.create_connection((web.addresses[0], web.port), timeout=2)
    for sock in [*socks, canary]:
        sock.close()
    assert web.errors == []
