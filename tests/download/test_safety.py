"""The SSRF rules: a table of hostile URLs, each with the reason it is dropped, and the check on
the address the fetcher connects to after DNS."""

import ipaddress

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
    embedded_ipv4s,
    normalized_host,
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
    # spellings that IDNA / UTS-46 normalise to an address: full-width, the three dot variants
    ("http://\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11/", PRIVATE_ADDRESS),
    ("http://127\u30020\u30020\u30021/", PRIVATE_ADDRESS),  # ideographic full stop
    ("http://127\uff0e0\uff0e0\uff0e1/", PRIVATE_ADDRESS),  # full-width full stop
    ("http://127\uff610\uff610\uff611/", PRIVATE_ADDRESS),  # half-width ideographic stop
    ("http://\uff11\uff16\uff19.254\u3002169\uff61\uff12\uff15\uff14/", PRIVATE_ADDRESS),
    ("http://\uff10\uff58\uff17\uff46\uff0e\uff11/x.jpg", PRIVATE_ADDRESS),  # full-width hex
    ("http://127.0.0.1\u3002/x.jpg", PRIVATE_ADDRESS),  # ideographic trailing dot
    # IPv4 embedded in IPv6
    ("http://[2002:a9fe:a9fe::]/latest/meta-data/", PRIVATE_ADDRESS),  # 6to4 169.254.169.254
    ("http://[2002:7f00:1::1]/x.png", PRIVATE_ADDRESS),  # 6to4 127.0.0.1
    ("http://[2001:0:a00:1:0:0:a247:27dd]/x.png", PRIVATE_ADDRESS),  # Teredo, server 10.0.0.1
    ("http://[2001:0:5db8:d822::80ff:fffe]/x.png", PRIVATE_ADDRESS),  # Teredo, client 127.0.0.1
    ("http://[64:ff9b::10.0.0.1]/x.png", PRIVATE_ADDRESS),  # NAT64
    ("http://[64:ff9b:1::a00:1]/x.png", PRIVATE_ADDRESS),  # local-use NAT64
    ("http://[::127.0.0.1]/x.png", PRIVATE_ADDRESS),  # IPv4-compatible
    ("http://[::ffff:0:a9fe:a9fe]/x.png", PRIVATE_ADDRESS),  # IPv4-translated
    ("http://localhost/x.jpg", INTERNAL_HOSTNAME),
    ("http://LOCALHOST:80/x.jpg", INTERNAL_HOSTNAME),
    ("http://api.localhost/x.jpg", INTERNAL_HOSTNAME),
    ("http://printer.local/x.jpg", INTERNAL_HOSTNAME),
    ("http://metadata.google.internal/computeMetadata/v1/", INTERNAL_HOSTNAME),
    ("http://nas.lan/x.jpg", INTERNAL_HOSTNAME),
    ("http://router.home.arpa/x.jpg", INTERNAL_HOSTNAME),
    ("http://wiki.corp/x.jpg", INTERNAL_HOSTNAME),
    ("http://intranet/x.jpg", INTERNAL_HOSTNAME),  # single label
    ("http://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54/x.jpg", INTERNAL_HOSTNAME),
    ("http://LOCALHOST\u3002/x.jpg", INTERNAL_HOSTNAME),
    ("http://printer\uff0elocal/x.jpg", INTERNAL_HOSTNAME),
    ("http://metadata\uff61google\u3002internal/", INTERNAL_HOSTNAME),
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
    ("http://a..example.com/x.jpg", UNPARSABLE_URL),  # empty label
    ("http://" + "a" * 64 + ".com/x.jpg", UNPARSABLE_URL),  # label over 63
    ("http://127.0.0.1 x/x.jpg", UNPARSABLE_URL),  # glibc inet_aton would read 127.0.0.1
    ("http://%31%32%37.0.0.1/x.jpg", UNPARSABLE_URL),
    ("http://[v1.fe]/x.jpg", UNPARSABLE_URL),  # IPvFuture
    ("http://exa\u3000mple.com/x.jpg", UNPARSABLE_URL),  # ideographic space
    ("http://127.0.0.1\uff1a8080/x.jpg", UNPARSABLE_URL),  # full-width colon
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
    "http://b\u00fccher.de/x.jpg",  # a real IDN
    "http://\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\u3002com/x.jpg",  # full-width
    "http://xn--bcher-kva.de/x.jpg",
    "http://some_host.example.com/x.jpg",
    "http://[::ffff:93.184.216.34]/x.jpg",  # IPv4-mapped public
    "http://[2002:5db8:d822::1]/x.jpg",  # 6to4 of a public address
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


def test_port_zero_is_not_the_default_port():
    safety = UrlSafety(SafetyConfig(allow_networks=["127.0.0.1:80"]))
    assert safety.reason("http://127.0.0.1/x.jpg") is None
    assert safety.reason("http://127.0.0.1:0/x.jpg") == PRIVATE_ADDRESS
    assert UrlSafety().reason("http://example.com:0/x.jpg") == PORT_NOT_ALLOWED


@pytest.mark.parametrize(
    ("host", "ascii_host"),
    [
        ("\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11", "127.0.0.1"),
        ("127\u30020\uff0e0\uff611", "127.0.0.1"),
        ("\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54", "localhost"),
        ("B\u00fccher.DE.", "xn--bcher-kva.de"),
        ("Example.COM", "example.com"),
        ("[::FFFF:7F00:1]", "::ffff:7f00:1"),
        ("fe80::1%eth0", "fe80::1"),
    ],
)
def test_normalized_host_is_what_dns_and_the_host_header_get(host, ascii_host):
    assert normalized_host(host) == ascii_host


@pytest.mark.parametrize("host", ["", "a..b", ".example.com", "a b.com", "%41.com", "x" * 254])
def test_normalized_host_refuses_what_cannot_be_encoded(host):
    with pytest.raises(ValueError):
        normalized_host(host)


def test_check_hands_the_fetcher_what_it_connects_to():
    safety = UrlSafety()
    checked = safety.check("https://B\u00fccher.de/x.jpg")
    assert checked == (None, "xn--bcher-kva.de", 443, "https", None)
    checked = safety.check("http://[2606:2800:220:1:248:1893:25c8:1946]:8080/x")
    assert checked.reason is None and checked.port == 8080
    assert checked.ip == ipaddress.ip_address("2606:2800:220:1:248:1893:25c8:1946")
    assert safety.check("http://0x7f.1/x").ip == ipaddress.ip_address("127.0.0.1")
    assert safety.check("ftp://example.com/x").reason == UNSAFE_SCHEME


@pytest.mark.parametrize(
    ("ip", "carried"),
    [
        ("::ffff:127.0.0.1", ["127.0.0.1"]),
        ("2002:a9fe:a9fe::", ["169.254.169.254"]),
        ("2001:0:5db8:d822::80ff:fffe", ["93.184.216.34", "127.0.0.1"]),  # server, client
        ("64:ff9b::a00:1", ["10.0.0.1"]),
        ("::127.0.0.1", ["127.0.0.1"]),
        ("::ffff:0:a9fe:a9fe", ["169.254.169.254"]),
        ("2606:2800:220:1:248:1893:25c8:1946", []),
        ("93.184.216.34", []),
    ],
)
def test_embedded_ipv4_addresses_are_found(ip, carried):
    found = embedded_ipv4s(ipaddress.ip_address(ip))
    assert found == [ipaddress.IPv4Address(a) for a in carried]


@pytest.mark.parametrize(
    "ip",
    [
        "127.0.0.1",
        "10.1.2.3",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fd00:ec2::254",
        "fe80::1%eth0",
        "::ffff:169.254.169.254",
        "2002:a9fe:a9fe::1",
        "2002:7f00:1::",
        "64:ff9b::a00:1",
        "not an address",
    ],
)
@pytest.mark.parametrize("port", [80, 443, 22, 6379, 8080])
def test_a_private_address_is_refused_with_one_reason_whatever_the_port(ip, port):
    assert UrlSafety().address_reason(ip, port) == PRIVATE_ADDRESS


def test_address_reason_takes_ipaddress_objects_and_public_addresses_pass():
    safety = UrlSafety()
    assert safety.address_reason(ipaddress.ip_address("93.184.216.34"), 443) is None
    assert safety.address_reason("2606:2800:220:1:248:1893:25c8:1946", 80) is None
    assert safety.address_reason(ipaddress.ip_address("10.0.0.1"), 443) == PRIVATE_ADDRESS
    assert safety.address_reason("93.184.216.34", 22) == PORT_NOT_ALLOWED


def test_address_reason_honours_an_allowed_network_on_any_port():
    safety = UrlSafety(SafetyConfig(allow_networks=["127.0.0.0/8", "::1/128"]))
    assert safety.address_reason("127.0.0.1", 8799) is None
    assert safety.address_reason(ipaddress.ip_address("127.3.2.1"), 22) is None
    assert safety.address_reason("::1", 8799) is None
    assert safety.address_reason("::ffff:127.0.0.1", 8799) == PRIVATE_ADDRESS  # not named
    assert safety.address_reason("10.0.0.7", 8799) == PRIVATE_ADDRESS


def test_address_reason_honours_one_allowed_address_and_port_only():
    safety = UrlSafety(SafetyConfig(allow_networks=["127.0.0.1:8765", "[::1]:8765"]))
    assert safety.address_reason("127.0.0.1", 8765) is None
    assert safety.address_reason("::1", 8765) is None
    for port in (80, 443, 8766, 22):
        assert safety.address_reason("127.0.0.1", port) == PRIVATE_ADDRESS
        assert safety.address_reason("::1", port) == PRIVATE_ADDRESS
    assert safety.address_reason("127.0.0.2", 8765) == PRIVATE_ADDRESS


def test_url_and_address_checks_agree_on_literals():
    """The fetcher checks a literal host's address with address_reason; both must agree."""
    safety = UrlSafety(SafetyConfig(allow_networks=["127.0.0.1:8765"]))
    for url, _ in HOSTILE + [(u, None) for u in SAFE]:
        checked = safety.check(url)
        if checked.ip is not None and checked.reason in (None, PRIVATE_ADDRESS):
            assert safety.address_reason(checked.ip, checked.port) == checked.reason, url
