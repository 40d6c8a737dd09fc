"""SSRF guard for every URL the gateway calls on someone else's behalf (webhook
deliveries, result mirroring).

Only http(s); no user info; the host, and every address it resolves to, must not be loopback,
private, link-local, CGNAT, multicast, unspecified, reserved or a cloud metadata endpoint (IPv4 in
any spelling, and IPv4 carried inside IPv6), unless the operator allow-lists it
(``KGW_OUTBOUND_ALLOW``).

* ``policy``  — the address tables, host parsing, the allow-list
* ``guard``   — ``UrlGuard`` (sync ``check_syntax`` for submit time, async ``check``
  with DNS), ``UrlRefused``
* ``client``  — ``guarded_session`` (screens at connect time, every redirect hop) and ``fetch``
"""

from kling_gateway.netguard.client import GuardResolver, fetch, guarded_session
from kling_gateway.netguard.guard import Resolver, Target, UrlGuard, UrlRefused, system_resolve
from kling_gateway.netguard.policy import AllowList, Refusal

__all__ = [
    "AllowList",
    "GuardResolver",
    "Refusal",
    "Resolver",
    "Target",
    "UrlGuard",
    "UrlRefused",
    "fetch",
    "guarded_session",
    "system_resolve",
]
