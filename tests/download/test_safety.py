"""The SSRF pre-filter: a table of hostile URLs, each with the reason it is dropped."""

import pytest

from vlcurate.pipeline.download.safety import (
    INTERNAL_HOSTNAME,
    PORT_NOT_ALLOWED,
    PRIVATE_ADDRESS,
    UNPARSABLE_URL,
    UNSAFE_SCHEME,
    URL_CREDENTIALS,
    SafetyConfig,
    UrlSafety,
)

HOSTILE = [
    ("http://169.254.169.254/latest/meta-data/", PRIVATE_ADDRESS),  # cloud metadata
    ("http://[fd00:ec2::254]/latest/meta-data/", PRIVATE_ADDRESS),  # AWS IPv6 metadata
    ("http://127.0.0.1/admin.png", PRIVATE_ADDRESS),
    ("http://127.1/x.jpg", PRIVATE_ADDRESS),  # short form
    ("http://2130706433/x.jpg", PRIVATE_ADDRESS),  # decimal 127.0.0.1
    ("http://0x7f.1/x.jpg", PRIVATE_ADDRESS),  # hex short form
    ("http://0x7f000001/x.jpg", PRIVATE_ADDRESS),
    ("http://0177.0.0.1/x.jpg", PRIVATE_ADDRESS),  # octal
    ("http://017700000001/x.jpg", PRIVATE_ADDRESS),  # octal, one number
    ("http://10.0.0.7/a.jpg", PRIVATE_ADDRESS),
    ("http://172.16.5.4/a.jpg", PRIVATE_ADDRESS),
    ("http://192.168.1.1/router.png", PRIVATE_ADDRESS),
    ("http://100.64.0.1/a.jpg", PRIVATE_ADDRESS),  # carrier-grade NAT
    ("http://0.0.0.0/a.jpg", PRIVATE_ADDRESS),
    ("http://224.0.0.1/a.jpg", PRIVATE_ADDRESS),  # multicast
    ("http://240.0.0.1/a.jpg", PRIVATE_ADDRESS),  # reserved
    ("http://255.255.255.255/a.jpg", PRIVATE_ADDRESS),
    ("http://[::1]:8080/x.png", PRIVATE_ADDRESS),
    ("http://[::]/x.png", PRIVATE_ADDRESS),
    ("http://[fe80::1%25eth0]/x.png", PRIVATE_ADDRESS),  # link-local with a zone
    ("http://[::ffff:127.0.0.1]/x.png", PRIVATE_ADDRESS),  # IPv4-mapped loopback
    ("http://[::ffff:a9fe:a9fe]/x.png", PRIVATE_ADDRESS),  # IPv4-mapped metadata
    ("http://[fc00::1]/x.png", PRIVATE_ADDRESS),  # unique local
    ("http://[ff02::1]/x.png", PRIVATE_ADDRESS),  # multicast
    ("http://127.0.0.1./x.jpg", PRIVATE_ADDRESS),  # trailing dot
    ("http://localhost/x.jpg", INTERNAL_HOSTNAME),
    ("http://LOCALHOST:80/x.jpg", INTERNAL_HOSTNAME),
    ("http://api.localhost/x.jpg", INTERNAL_HOSTNAME),
    ("http://printer.local/x.jpg", INTERNAL_HOSTNAME),
    ("http://metadata.google.internal/computeMetadata/v1/", INTERNAL_HOSTNAME),
    ("http://nas.lan/x.jpg", INTERNAL_HOSTNAME),
    ("http://router.home.arpa/x.jpg", INTERNAL_HOSTNAME),
    ("http://wiki.corp/x.jpg", INTERNAL_HOSTNAME),
    ("http://intranet/x.jpg", INTERNAL_HOSTNAME),  # single label
    ("http://user:pass@example.com/x.jpg", URL_CREDENTIALS),
    ("http://user@example.com/x.jpg", URL_CREDENTIALS),
    ("http://example.com:22/x.jpg", PORT_NOT_ALLOWED),
    ("http://example.com:6379/x.jpg", PORT_NOT_ALLOWED),  # redis
    ("https://93.184.216.34:2375/x.jpg", PORT_NOT_ALLOWED),  # docker API
    ("file:///etc/passwd", UNSAFE_SCHEME),
    ("gopher://example.com/x", UNSAFE_SCHEME),
    ("ftp://example.com/x.jpg", UNSAFE_SCHEME),
    ("data:image/png;base64,AAAA", UNSAFE_SCHEME),
    ("javascript:alert(1)", UNSAFE_SCHEME),
    ("http://example.com:99999/x.jpg", UNPARSABLE_URL),
    ("http://[::1/x.jpg", UNPARSABLE_URL),
    ("http:///x.jpg", UNPARSABLE_URL),
    ("", UNSAFE_SCHEME),
    (None, UNSAFE_SCHEME),
]

SAFE = [
    "http://example.com/x.jpg",
    "https://upload.wikimedia.org/wikipedia/commons/thumb/a.png",
    "https://example.com:443/x.jpg",
    "http://example.com:8080/x.jpg",
    "http://93.184.216.34/x.jpg",  # a public IP literal
    "http://[2606:2800:220:1:248:1893:25c8:1946]/x.jpg",
    "https://cdn.example.co.uk/path/with:colon/x.jpg",
]


@pytest.mark.parametrize(("url", "reason"), HOSTILE)
def test_hostile_urls_are_dropped_with_their_reason(url, reason):
    assert UrlSafety().reason(url) == reason


@pytest.mark.parametrize("url", SAFE)
def test_public_urls_pass(url):
    assert UrlSafety().reason(url) is None


def test_allowing_loopback_for_tests_allows_only_loopback():
    safety = UrlSafety(SafetyConfig(allow_networks=["127.0.0.0/8", "::1/128"]))
    assert safety.reason("http://127.0.0.1:8799/img/a.jpg") is None
    assert safety.reason("http://2130706433:8799/img/a.jpg") is None
    assert safety.reason("http://[::1]:8799/img/a.jpg") is None
    assert safety.reason("http://169.254.169.254/latest/meta-data/") == PRIVATE_ADDRESS
    assert safety.reason("http://10.0.0.7/a.jpg") == PRIVATE_ADDRESS
    assert safety.reason("http://localhost:8799/a.jpg") == INTERNAL_HOSTNAME


def test_allowing_one_loopback_address_and_port():
    safety = UrlSafety(SafetyConfig(allow_networks=["127.0.0.1:8765", "[::1]:8765"]))
    assert safety.reason("http://127.0.0.1:8765/img/a.jpg") is None
    assert safety.reason("http://[::1]:8765/img/a.jpg") is None
    assert safety.reason("http://127.0.0.1:8766/img/a.jpg") == PRIVATE_ADDRESS
    assert safety.reason("http://2130706433/x.jpg") == PRIVATE_ADDRESS  # loopback, but port 80
    assert safety.reason("http://127.0.0.2:8765/x.jpg") == PRIVATE_ADDRESS
