"""Which addresses an outbound call may reach, and how a URL host becomes an address or a name.

The refusal tables are spelled out here (IANA special-purpose registries plus the cloud metadata
endpoints SSRF is usually aimed at) instead of leaning on ``ipaddress``'s
``is_private``/``is_global``: those definitions changed between 3.11 patch releases, and a security
rule should not move when the interpreter is upgraded. The first matching row wins, so the specific
rows (metadata) sit above the broad ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from yarl import URL

from kling_gateway.errors import ConfigError

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why one address is refused: ``rule`` is stable for code and tests, ``label``
    reads in a sentence."""

    rule: str
    label: str
    embedded: IPv4Address | None = None

    def describe(self) -> str:
        if self.embedded is None:
            return self.label
        return f"{self.label} (embedded IPv4 {self.embedded})"


_METADATA = ("metadata", "a cloud metadata address")
_PRIVATE = ("private", "a private address")
_RESERVED = ("reserved", "a reserved address")
_DOCS = ("documentation", "a documentation address")

# Metadata rows: AWS/GCP/Azure/DigitalOcean IMDS, AWS ECS credentials and EKS pod
# identity, Tencent, Alibaba, Azure WireServer (a public-looking address only
# reachable from inside Azure), Oracle legacy.
_V4_TABLE: list[tuple[IPv4Network, tuple[str, str]]] = [
    (IPv4Network(net), verdict)
    for net, verdict in [
        ("169.254.169.254/32", _METADATA),
        ("169.254.170.2/32", _METADATA),
        ("169.254.170.23/32", _METADATA),
        ("169.254.0.23/32", _METADATA),
        ("100.100.100.200/32", _METADATA),
        ("168.63.129.16/32", _METADATA),
        ("192.0.0.192/32", _METADATA),
        ("0.0.0.0/32", ("unspecified", "an unspecified address")),
        # Linux connects 0.x to itself
        ("0.0.0.0/8", ("reserved", "a reserved (this-network) address")),
        ("127.0.0.0/8", ("loopback", "a loopback address")),
        ("10.0.0.0/8", _PRIVATE),
        ("172.16.0.0/12", _PRIVATE),
        ("192.168.0.0/16", _PRIVATE),
        ("100.64.0.0/10", ("shared", "a shared (CGNAT) address")),
        ("169.254.0.0/16", ("link-local", "a link-local address")),
        ("224.0.0.0/4", ("multicast", "a multicast address")),
        ("255.255.255.255/32", ("broadcast", "a broadcast address")),
        ("240.0.0.0/4", _RESERVED),
        ("192.0.0.0/24", _RESERVED),
        ("192.88.99.0/24", _RESERVED),
        ("198.18.0.0/15", ("benchmarking", "a benchmarking address")),
        ("192.0.2.0/24", _DOCS),
        ("198.51.100.0/24", _DOCS),
        ("203.0.113.0/24", _DOCS),
    ]
]

_V6_TABLE: list[tuple[IPv6Network, tuple[str, str]]] = [
    (IPv6Network(net), verdict)
    for net, verdict in [
        ("fd00:ec2::254/128", _METADATA),
        ("fd00:ec2::23/128", _METADATA),
        ("::/128", ("unspecified", "an unspecified address")),
        ("::1/128", ("loopback", "a loopback address")),
        # local-use NAT64: the translator is ours, the target unknowable
        ("64:ff9b:1::/48", _RESERVED),
        ("100::/64", _RESERVED),
        ("fe80::/10", ("link-local", "a link-local address")),
        ("fec0::/10", _RESERVED),
        ("fc00::/7", ("private", "a private (unique local) address")),
        ("ff00::/8", ("multicast", "a multicast address")),
        ("2001:db8::/32", _DOCS),
        ("3fff::/20", _DOCS),
        ("2001::/23", _RESERVED),  # IETF protocol assignments, Teredo included
    ]
]

_GLOBAL_UNICAST = IPv6Network("2000::/3")
_NAT64 = IPv6Network("64:ff9b::/96")
_COMPATIBLE = IPv6Network("::/96")


def _embedded_ipv4(ip: IPv6Address) -> tuple[IPv4Address, bool] | None:
    """The IPv4 address an IPv6 one reaches, and whether it is the *same* host
    (mapped) or a translator's.

    Mapped (::ffff:a.b.c.d) is literally the IPv4 socket; NAT64 and 6to4 go through a gateway that
    forwards to the embedded address, so an internal one there is just as reachable; the deprecated
    compatible form (::a.b.c.d) is unwrapped only to name the rule it breaks.
    """
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, True
    if ip in _NAT64 or ip in _COMPATIBLE:
        return IPv4Address(int(ip) & 0xFFFFFFFF), False
    if ip.sixtofour is not None:
        return ip.sixtofour, False
    return None


def refusal_for(ip: IPAddress) -> Refusal | None:
    """The rule ``ip`` breaks before any allow-list is consulted, or None for a public address."""
    if isinstance(ip, IPv4Address):
        for net4, (rule, label) in _V4_TABLE:
            if ip in net4:
                return Refusal(rule, label)
        return None
    for net6, (rule, label) in _V6_TABLE:
        if ip in net6:
            return Refusal(rule, label)
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        inner = refusal_for(embedded[0])
        if inner is not None:
            return replace(inner, embedded=embedded[0])
        if ip.ipv4_mapped is not None or ip in _NAT64:
            return None
    if ip not in _GLOBAL_UNICAST:
        return Refusal("reserved", "a reserved (not global unicast) address")
    return None


def parse_address(text: str) -> IPAddress:
    """An IP from a resolver or an operator; a zone id (``fe80::1%eth0``) is dropped,
    it names no host."""
    return ip_address(text.split("%", 1)[0])


# --- hosts as they appear in URLs

_HEX_RE = re.compile(r"0[xX][0-9a-fA-F]*")
_LABEL_RE = re.compile(r"[a-z0-9_-]{1,63}")


def _ipv4_part(part: str) -> int:
    if _HEX_RE.fullmatch(part):
        return int(part[2:] or "0", 16)
    if not part.isascii() or not part.isdigit():
        raise ValueError(part)
    if len(part) > 1 and part.startswith("0"):
        return int(part, 8)  # ValueError on 8/9, as it should
    return int(part)


def _ends_in_number(host: str) -> bool:
    """WHATWG's test: a host whose last label is numeric is an IPv4 address, valid or not.

    Browsers, curl and ``inet_aton`` all read ``2130706433``, ``0x7f.1`` and ``0177.0.0.1`` as
    127.0.0.1, so treating them as names would let them reach the resolver looking harmless.
    """
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    last = parts[-1]
    return bool(last) and ((last.isascii() and last.isdigit()) or bool(_HEX_RE.fullmatch(last)))


def parse_host_ip(host: str) -> IPAddress | None:
    """The address a URL host denotes, None when it is a name; ValueError when it is
    a broken address."""
    if ":" in host:
        return IPv6Address(host)
    if not _ends_in_number(host):
        return None
    parts = host.split(".")
    if parts[-1] == "":
        parts.pop()
    if len(parts) > 4 or "" in parts:
        raise ValueError(host)
    numbers = [_ipv4_part(part) for part in parts]
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise ValueError(host)
    value = numbers[-1]
    for index, n in enumerate(numbers[:-1]):
        value += n << (8 * (3 - index))
    return IPv4Address(value)


def normalize_hostname(name: str) -> str:
    """Lower-case, punycode, no trailing dot: the spelling aiohttp's connector hands
    to the resolver."""
    name = name.strip().rstrip(".")
    if not name.isascii():
        name = URL.build(scheme="http", host=name).raw_host or ""
    return name.lower()


def is_valid_hostname(name: str) -> bool:
    return 0 < len(name) <= 253 and all(_LABEL_RE.fullmatch(label) for label in name.split("."))


# Suffixes that never name a public host: RFC 6761/6762/8375, ICANN's .internal, and the
# never-delegated names routers and corporate DNS hand out. Single-label names are refused too:
# resolv.conf search domains turn "redis" or "metadata" into internal services.
_INTERNAL_SUFFIXES = (
    "localhost",
    "local",
    "internal",
    "localdomain",
    "home.arpa",
    "lan",
    "intranet",
    "corp",
)


def is_internal_name(name: str) -> bool:
    if "." not in name:
        return True
    return any(name == suffix or name.endswith("." + suffix) for suffix in _INTERNAL_SUFFIXES)


class AllowList:
    """The operator's exceptions: IPs, CIDRs and exact hostnames (no wildcards: a
    typo must not open a zone).

    A metadata address is only let through by an entry naming that single address (or by a hostname
    entry): ``10.0.0.0/8`` is a normal thing to allow, and a broad entry like ``169.254.0.0/16`` or
    ``0.0.0.0/0`` should not silently hand out instance credentials.
    """

    def __init__(self, entries: Iterable[str]) -> None:
        self.networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                self.networks.append(ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            name = normalize_hostname(entry) if "/" not in entry and "*" not in entry else ""
            if not is_valid_hostname(name) or _ends_in_number(name):
                raise ConfigError(
                    f"KGW_OUTBOUND_ALLOW entry {entry!r} is not an IP, a CIDR or an exact hostname"
                )
            hosts.add(name)
        self.hosts = frozenset(hosts)

    def covers_host(self, name: str) -> bool:
        return normalize_hostname(name) in self.hosts

    def covers_ip(self, ip: IPAddress, *, exact: bool = False) -> bool:
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
            candidates.append(ip.ipv4_mapped)  # the same socket, so the same permission
        return any(
            c in net and (not exact or net.prefixlen == net.max_prefixlen)
            for c in candidates
            for net in self.networks
            if net.version == c.version
        )
