"""Key IP allow-lists: CIDRs an operator gives a key; a call from elsewhere is refused at auth.

Kling's own code for this refusal is 1304 "IP whitelist policy" (HTTP 429, kling-api.md §5): clients
written for Kling already treat it as "do not retry", which 401/1002 would not say (the key is
valid).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_ENTRIES = 100


def parse_networks(items: Iterable[object], field: str = "allowed_ips") -> tuple[str, ...]:
    """Normalised CIDR texts (a bare address is its /32 or /128); ValueError names the bad entry."""
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"{field}: every entry must be a string (an address or a CIDR)")
        try:
            out.append(str(ipaddress.ip_network(item.strip(), strict=False)))
        except ValueError:
            raise ValueError(f"{field}: {item!r} is not an IP address or CIDR") from None
    if not out or len(out) > MAX_ENTRIES:
        raise ValueError(f"{field}: give 1 to {MAX_ENTRIES} entries, or null for any address")
    return tuple(dict.fromkeys(out))


@lru_cache(maxsize=1024)
def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def ip_allowed(address: str | None, cidrs: tuple[str, ...]) -> bool:
    """Whether ``address`` is inside one of ``cidrs``. An unknown or unreadable address is refused:
    an allow-list is a promise that nothing else gets in. An IPv4-mapped IPv6 address counts as its
    IPv4."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == n.version and ip in n for n in _networks(cidrs))
