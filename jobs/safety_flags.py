"""The download's network flags, shared by ``curate download`` and ``curate run``: which private
networks a test or demo may reach, and which ports public hosts may use."""

import argparse

from vlcurate.pipeline.download.safety import SafetyConfig

LOOPBACK = ["127.0.0.0/8", "::1/128"]
PORTS = [80, 443, 8080, 8443]


def add_safety_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-private-network",
        nargs="*",
        metavar="CIDR",
        default=None,
        help="for tests and the demo only: also fetch from these private networks or "
        "ADDRESS:PORT pairs (127.0.0.1:8765) "
        f"(no value: loopback, {' '.join(LOOPBACK)}); other private, "
        "link-local and reserved addresses stay blocked",
    )
    parser.add_argument(
        "--allowed-ports",
        nargs="*",
        type=int,
        default=PORTS,
        metavar="PORT",
        help=f"explicit ports public hosts may use (default: {' '.join(map(str, PORTS))})",
    )


def networks(allow: list[str] | None) -> list[str]:
    """``--allow-private-network``'s networks: None (flag absent) none, [] (alone) loopback."""
    return [] if allow is None else allow or LOOPBACK


def safety_from(args: argparse.Namespace) -> SafetyConfig:
    return SafetyConfig(
        allowed_ports=args.allowed_ports, allow_networks=networks(args.allow_private_network)
    )
