"""A pre-filter that drops URLs no crawler should request, before any request is made (SSRF).

Image URLs come from untrusted pages: an ``<img>`` can point at a cloud metadata service
(``http://169.254.169.254/``) or an admin page on the crawler's own network. Each unsafe URL is
dropped with its own reason. What this cannot see: a public name whose DNS answer is a private
address (or changes between check and fetch), and redirects to private addresses. Run the
download behind an egress proxy or firewall that refuses private destinations for those.
"""

import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from vlcurate.pipeline.config import Config, ConfigError

UNSAFE_SCHEME = "unsafe_scheme"  # not http or https
URL_CREDENTIALS = "url_credentials"  # user:password@ in the URL
PRIVATE_ADDRESS = "private_address"  # an IP literal that is not a public unicast address
INTERNAL_HOSTNAME = "internal_hostname"  # localhost, *.local, *.internal, single-label names
PORT_NOT_ALLOWED = "port_not_allowed"  # an explicit port outside the allow-list
UNPARSABLE_URL = "unparsable_url"

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


def _ip_literal(host: str):
    """The address a host names when it is an IP literal in any form a URL parser or
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


def _is_public(ip) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_private)


class UrlSafety:
    """``reason(url)`` is ``None`` for a URL that may be fetched, else why it may not."""

    def __init__(self, config: SafetyConfig | None = None):
        self.config = config or SafetyConfig()
        self.allowed_ports = frozenset(self.config.allowed_ports)
        self.allowances = [_allowance(entry) for entry in self.config.allow_networks]

    def reason(self, url: str | None) -> str | None:
        try:
            parts = urlsplit((url or "").strip())
            port = parts.port  # raises ValueError for a non-numeric or out-of-range port
            host = (parts.hostname or "").rstrip(".").lower()
        except ValueError:
            return UNPARSABLE_URL
        if parts.scheme.lower() not in ("http", "https"):
            return UNSAFE_SCHEME
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            return URL_CREDENTIALS
        if not host:
            return UNPARSABLE_URL
        ip = _ip_literal(host.split("%", 1)[0])  # drop an IPv6 zone id
        if ip is not None:
            effective_port = port or (443 if parts.scheme.lower() == "https" else 80)
            for network, allowed_port in self.allowances:
                if ip in network and allowed_port in (None, effective_port):
                    return None  # explicitly allowed, for tests and the demo on loopback
            if not _is_public(ip):
                return PRIVATE_ADDRESS
        elif host == "localhost" or host.endswith(INTERNAL_SUFFIXES) or "." not in host:
            return INTERNAL_HOSTNAME
        if port is not None and port not in self.allowed_ports:
            return PORT_NOT_ALLOWED
        return None
