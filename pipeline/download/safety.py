"""SSRF rules for untrusted URLs: a pre-filter before any request, and the check on each address
the fetcher actually connects to.

Image URLs come from untrusted pages: an ``<img>`` can point at a cloud metadata service
(``http://169.254.169.254/``) or an admin page on the crawler's own network. ``reason(url)``
drops each unsafe URL with its own reason, and guarantees, for a URL it passes: the scheme is
http or https; there are no credentials; the host, normalised as IDNA/UTS-46 does (NFKC, so
full-width digits and letters; the dots U+3002, U+FF0E, U+FF61; lowercase; no trailing dot),
is either a public IP literal in any spelling ``inet_aton`` accepts, including IPv4 embedded in
IPv6 (mapped, compatible, 6to4, Teredo server and client, NAT64), or a multi-label name outside
the internal suffixes; and an explicit port is in ``allowed_ports``.

What a URL cannot show, the fetcher checks: it resolves the normalised host itself, refuses a
DNS answer for which ``address_reason(ip, port)`` is not ``None`` (a public name that resolves
to a private address), connects to that checked address (sending the original Host / SNI), and
puts every redirect's Location through ``reason`` again. A refused address has one reason,
``PRIVATE_ADDRESS``, whatever the port, so refusals leave no port-scan signal.
"""

import encodings.idna  # noqa: F401  registers the "idna" codec (IDNA 2003, the stdlib's)
import ipaddress
import re
import socket
import unicodedata
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import urlsplit

from vlcurate.pipeline.config import Config, ConfigError

UNSAFE_SCHEME = "unsafe_scheme"  # not http or https
URL_CREDENTIALS = "url_credentials"  # user:password@ in the URL
PRIVATE_ADDRESS = "private_address"  # an IP (literal or connected to) that is not public unicast
INTERNAL_HOSTNAME = "internal_hostname"  # localhost, *.local, *.internal, single-label names
PORT_NOT_ALLOWED = "port_not_allowed"  # an explicit port outside the allow-list
UNPARSABLE_URL = "unparsable_url"  # includes a host that cannot be IDNA-encoded

REASONS = (
    UNPARSABLE_URL,
    UNSAFE_SCHEME,
    URL_CREDENTIALS,
    PRIVATE_ADDRESS,
    INTERNAL_HOSTNAME,
    PORT_NOT_ALLOWED,
)
INTERNAL_SUFFIXES = (
    ".localhost",
    ".local",
    ".internal",
    ".lan",
    ".home.arpa",
    ".corp",
    ".intranet",
    ".private",
    ".localdomain",
    ".home",
    ".test",
    ".invalid",
    ".example",
)
DEFAULT_PORTS = {"http": 80, "https": 443}
# UTS-46 treats these as label separators, as it does ".": ideographic, full-width, half-width.
DOTS = re.compile("[\u3002\uff0e\uff61]")
# What may reach DNS: letters, digits, hyphen and underscore (real hosts use it), dot-separated.
ASCII_HOST = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\Z")
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # well-known prefix, IPv4 in the last 32 bits
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # local use; the IPv4's place varies
V4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d
V4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT ::ffff:0:a.b.c.d


@dataclass
class SafetyConfig(Config):
    section = "safety"

    allowed_ports: list[int] = field(
        default_factory=lambda: [80, 443, 8080, 8443],
        metadata={"help": "explicit ports that public hosts may use", "min": 1, "max": 65535},
    )
    allow_networks: list[str] = field(
        default_factory=list,
        metadata={
            "help": "private networks to allow anyway, for tests and demos: a network "
            "(127.0.0.0/8, any port) or one address and port (127.0.0.1:8765, [::1]:8765)"
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        for entry in self.allow_networks:
            try:
                _allowance(entry)
            except ValueError:
                raise ConfigError(
                    f"safety.allow_networks: {entry!r} is not allowed (a network such as "
                    "127.0.0.0/8, or an address and port such as 127.0.0.1:8765)"
                ) from None


class Checked(NamedTuple):
    """What ``UrlSafety.check`` found: the fetcher connects to ``ip`` when the host is a literal,
    else resolves ``host`` (ASCII, for DNS, the Host header and SNI) and checks each answer."""

    reason: str | None
    host: str  # normalised, IPv6 without brackets; "" when the URL did not get that far
    port: int  # explicit, else the scheme's default; 0 when unknown
    scheme: str  # "http" or "https" when reason is None
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None  # the host, if a literal


def _allowance(entry: str) -> tuple:
    """``(network, port or None)`` from ``127.0.0.0/8``, ``127.0.0.1:8765`` or ``[::1]:8765``;
    ValueError for anything else."""
    if entry.startswith("["):
        address, _, port = entry[1:].partition("]:")
        network, port = ipaddress.ip_network(address.rstrip("]")), int(port) if port else None
    elif entry.count(":") == 1:
        address, port = entry.split(":")
        network, port = ipaddress.ip_network(address), int(port)
    else:
        network, port = ipaddress.ip_network(entry, strict=False), None
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"port {port} out of range")
    return network, port


def normalized_host(host: str) -> str:
    """The ASCII host that would be sent in DNS and the Host header, normalised as IDNA/UTS-46
    does: NFKC (``１２７`` is ``127``, ``ｌｏｃａｌｈｏｓｔ`` is ``localhost``), the ideographic,
    full-width and half-width dots as label separators, lowercase, trailing dots dropped, and
    punycode for real non-ASCII labels (``bücher.de`` -> ``xn--bcher-kva.de``). An IPv6 literal
    (with or without brackets) comes back compressed, without a zone. ValueError for a host that
    cannot be IDNA-encoded or holds characters DNS would not carry.

    The stdlib's IDNA 2003 codec, not the ``idna`` package (IDNA 2008): it needs no dependency,
    it is what ``socket`` and ``http.client`` apply to a non-ASCII host themselves, so the name
    checked is the name resolved, and it leaves ASCII labels alone (real hosts have ``_``,
    which IDNA 2008 refuses). It maps ``ß`` to ``ss`` where UTS-46 now keeps it: a rare name may
    resolve to its transitional twin, which is checked by the same rules."""
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        return ipaddress.IPv6Address(host.split("%", 1)[0]).compressed
    host = DOTS.sub(".", unicodedata.normalize("NFKC", host)).lower().rstrip(".")
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError as error:  # an empty label, a label over 63, a prohibited character
        raise ValueError(f"host {host!r} cannot be IDNA-encoded: {error}") from None
    if len(ascii_host) > 253 or not ASCII_HOST.match(ascii_host):
        raise ValueError(f"host {ascii_host!r} is not a DNS name or IP address")
    return ascii_host


def ip_literal(host: str):
    """The address a normalised host names when it is an IP literal in any form a URL parser or
    ``inet_aton`` accepts: dotted, decimal (2130706433), hex (0x7f.1), octal (0177.0.0.1),
    short (127.1), or IPv6; else ``None``."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def embedded_ipv4s(ip) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries, each of which a packet may end up at:
    IPv4-mapped, IPv4-compatible, IPv4-translated, 6to4, Teredo (server and client) and NAT64
    (64:ff9b::/96). Empty for IPv4 and for IPv6 that carries none."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if any(ip in net for net in (NAT64, V4_COMPATIBLE, V4_TRANSLATED)):
        return [low32]
    return []


def is_public(ip) -> bool:
    """A public unicast address, and so is every IPv4 address it embeds. An IPv4-mapped
    address is judged as its IPv4 address alone (``::ffff:93.184.216.34`` is public); the local
    NAT64 prefix is refused whole, as its IPv4 may sit at any of several offsets."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return is_public(ip.ipv4_mapped)
        if ip in NAT64_LOCAL or not all(is_public(v4) for v4 in embedded_ipv4s(ip)):
            return False
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_private)


class UrlSafety:
    """``reason(url)`` is ``None`` for a URL that may be fetched, else why it may not;
    ``address_reason(ip, port)`` is the same for an address about to be connected to."""

    def __init__(self, config: SafetyConfig | None = None):
        self.config = config or SafetyConfig()
        self.allowed_ports = frozenset(self.config.allowed_ports)
        self.allowances = [_allowance(entry) for entry in self.config.allow_networks]

    def reason(self, url: str | None) -> str | None:
        return self.check(url).reason

    def check(self, url: str | None) -> Checked:
        """Parse once, check everything a URL shows, and hand the fetcher what it connects to."""
        try:
            parts = urlsplit((url or "").strip())
            port = parts.port  # raises ValueError for a non-numeric or out-of-range port
            raw_host = parts.hostname or ""
        except ValueError:
            return Checked(UNPARSABLE_URL, "", 0, "")
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            return Checked(UNSAFE_SCHEME, "", 0, scheme)
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            return Checked(URL_CREDENTIALS, "", 0, scheme)
        effective_port = DEFAULT_PORTS[scheme] if port is None else port
        try:
            host = normalized_host(raw_host) if raw_host else ""
        except ValueError:
            host = ""
        bracketed = parts.netloc.startswith("[")
        if not host or (bracketed and ":" not in host):  # [v1.x] is an IPvFuture literal
            return Checked(UNPARSABLE_URL, "", 0, scheme)
        ip = ip_literal(host)
        if ip is not None:
            if self._allowed(ip, effective_port):
                return Checked(None, host, effective_port, scheme, ip)
            if not is_public(ip):
                return Checked(PRIVATE_ADDRESS, host, effective_port, scheme, ip)
        elif host == "localhost" or host.endswith(INTERNAL_SUFFIXES) or "." not in host:
            return Checked(INTERNAL_HOSTNAME, host, effective_port, scheme)
        if port is not None and port not in self.allowed_ports:
            return Checked(PORT_NOT_ALLOWED, host, effective_port, scheme, ip)
        return Checked(None, host, effective_port, scheme, ip)

    def address_reason(self, ip, port: int) -> str | None:
        """``None`` when the fetcher may connect to ``ip`` (an ``ipaddress`` object or text, as
        a DNS answer gives it) on ``port``; else ``PRIVATE_ADDRESS`` for an address that is
        neither public nor allowed, whatever the port, or ``PORT_NOT_ALLOWED`` for a public one
        on a port that is neither allowed nor the http/https default."""
        if isinstance(ip, str):
            try:
                ip = ipaddress.ip_address(ip.strip().strip("[]").split("%", 1)[0])
            except ValueError:
                return PRIVATE_ADDRESS  # not an address: refuse, with the one reason
        if self._allowed(ip, port):
            return None
        if not is_public(ip):
            return PRIVATE_ADDRESS
        if port not in self.allowed_ports and port not in DEFAULT_PORTS.values():
            return PORT_NOT_ALLOWED
        return None

    def _allowed(self, ip, port: int) -> bool:
        """Explicitly allowed, for tests and the demo on loopback: in a network on any port,
        or one address on its one port."""
        return any(ip in net and p in (None, port) for net, p in self.allowances)
