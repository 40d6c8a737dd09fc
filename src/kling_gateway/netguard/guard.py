"""``UrlGuard``: the one place that decides whether the gateway may call a URL.

Two strengths of check, because they run at different moments:

* ``check_syntax`` runs when a client submits a ``callback_url``. It must be cheap
  and synchronous (a create request must not wait on, or leak timing about, DNS), so
  it judges only what the text says: scheme, userinfo, port, literal addresses in
  every spelling, and names that can only be internal.
* ``check`` runs before each outbound call and adds DNS: every address the name resolves to must
  pass, because the connection may go to any of them.

Neither is the last word: ``guarded_session`` re-screens the addresses at connect time, since DNS
can answer differently a millisecond later (rebinding).
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from yarl import URL

from kling_gateway.netguard.policy import (
    AllowList,
    IPAddress,
    Refusal,
    is_internal_name,
    is_valid_hostname,
    normalize_hostname,
    parse_address,
    parse_host_ip,
    refusal_for,
)

if TYPE_CHECKING:
    from kling_gateway.settings import Settings

Resolver = Callable[[str, int], Awaitable[list[str]]]

_SCHEMES = ("http", "https")
_AUTHORITY_END = re.compile(r"[/?#]")


class UrlRefused(Exception):
    """An outbound URL the gateway will not call. Permanent: retrying the same URL cannot succeed.

    ``reason`` is the whole sentence (field, host, rule) and is safe to show the client;
    ``rule`` is a short stable id (``scheme``, ``userinfo``, ``port``, ``host``,
    ``malformed``, ``internal-name``, ``private``, ``loopback``, ``link-local``,
    ``metadata``, ``multicast``, ``unspecified``, ``reserved``, ``shared``,
    ``broadcast``, ``documentation``, ``benchmarking``) for code and metrics.
    """

    def __init__(self, reason: str, *, rule: str, field: str = "url") -> None:
        super().__init__(reason)
        self.reason = reason
        self.rule = rule
        self.field = field

    def __reduce__(self) -> tuple[Callable[[str, str, str], UrlRefused], tuple[str, str, str]]:
        """Keyword-only arguments would break pickling (e.g. across a process pool) without this."""
        return _rebuild_refused, (self.reason, self.rule, self.field)


def _rebuild_refused(reason: str, rule: str, field: str) -> UrlRefused:
    return UrlRefused(reason, rule=rule, field=field)


@dataclass(frozen=True, slots=True)
class Target:
    """What ``check_syntax`` learned: the host as the connector will see it, the
    port, the literal IP."""

    host: str
    port: int
    ip: IPAddress | None


async def system_resolve(host: str, port: int) -> list[str]:
    """Every address the system resolver returns (both families, deduplicated, in its order).

    No AI_ADDRCONFIG: an address this machine cannot route to today still has to pass, so the answer
    judged is the whole answer.
    """
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class UrlGuard:
    """Checks outbound URLs against the refusal rules, minus the operator's allow-list."""

    def __init__(self, allow: Sequence[str] = (), resolver: Resolver | None = None) -> None:
        """``allow``: IPs, CIDRs or exact hostnames (ConfigError on anything else, so a typo fails
        at start). ``resolver(host, port)`` returns IP strings; injectable so tests need no DNS.
        """
        self.allow = AllowList(allow)
        self._resolver = resolver or system_resolve

    @classmethod
    def from_settings(cls, settings: Settings) -> UrlGuard:
        return cls(settings.outbound_allow_list)

    # --- without DNS

    def check_syntax(self, url: str, field: str = "callback_url") -> None:
        """Refuse what the URL text alone proves bad. Sync and DNS-free, so it can
        run inside a create."""
        self.target(url, field)

    def target(self, url: str, field: str = "callback_url") -> Target:
        """``check_syntax`` that also returns what it parsed (used by ``check`` and the session)."""
        if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
            # yarl quietly drops tabs/newlines and trims spaces; other parsers don't.
            # Refuse the ambiguity.
            raise UrlRefused(
                f"{field}: URL contains whitespace or control characters",
                rule="malformed",
                field=field,
            )
        try:
            parsed = URL(url)
            port = parsed.port
        except (ValueError, TypeError) as exc:
            if "port" in str(exc).lower():
                raise UrlRefused(
                    f"{field}: port is out of range 1-65535", rule="port", field=field
                ) from None
            raise UrlRefused(
                f"{field}: not a valid URL ({exc})", rule="malformed", field=field
            ) from None
        if not parsed.scheme:
            raise UrlRefused(
                f"{field}: URL has no scheme (only http and https)", rule="scheme", field=field
            )
        if parsed.scheme not in _SCHEMES:
            raise UrlRefused(
                f"{field}: scheme {parsed.scheme!r} is not allowed (only http and https)",
                rule="scheme",
                field=field,
            )
        raw_host = parsed.raw_host
        if not raw_host or not parsed.absolute or "://" not in url:
            raise UrlRefused(f"{field}: URL has no host", rule="host", field=field)
        authority = _AUTHORITY_END.split(url.split("://", 1)[1], maxsplit=1)[0]
        if "@" in authority or parsed.user is not None or parsed.password is not None:
            # Credentials in a URL end up in logs and Referer-like places, and
            # "a.com@10.0.0.1" tricks humans.
            raise UrlRefused(
                f"{field}: URL must not contain user info (user:pass@)",
                rule="userinfo",
                field=field,
            )
        if port is None or not 1 <= port <= 65535:
            raise UrlRefused(
                f"{field}: port {port} is out of range 1-65535", rule="port", field=field
            )
        if "%" in raw_host:
            raise UrlRefused(
                f"{field}: host {raw_host} is not a valid host", rule="host", field=field
            )
        host = raw_host.rstrip(".")
        try:
            ip = parse_host_ip(host)
        except ValueError:
            raise UrlRefused(
                f"{field}: host {host} is not a valid IP address", rule="malformed", field=field
            ) from None
        if ip is not None:
            refusal = self.refusal(ip)
            if refusal is not None:
                shown = host if host == str(ip) else f"{host} (= {ip})"
                raise UrlRefused(
                    f"{field}: host {shown} is {refusal.describe()}", rule=refusal.rule, field=field
                )
            if isinstance(ip, IPv4Address) and host != str(ip):
                # 2130706433, 0x7f.1, 127.1: the HTTP client refuses these spellings at every send
                raise UrlRefused(
                    f"{field}: host {host} is not a canonical IPv4 address (write it as {ip})",
                    rule="malformed",
                    field=field,
                )
            return Target(str(ip), port, ip)
        if not is_valid_hostname(host):
            raise UrlRefused(
                f"{field}: host {host!r} is not a valid hostname", rule="host", field=field
            )
        if is_internal_name(host) and not self.allow.covers_host(host):
            raise UrlRefused(
                f"{field}: host {host} is an internal name", rule="internal-name", field=field
            )
        return Target(host, port, None)

    def refusal(self, ip: IPAddress) -> Refusal | None:
        """The rule ``ip`` breaks after the allow-list, or None when the gateway may
        connect to it."""
        refusal = refusal_for(ip)
        if refusal is None or self.allow.covers_ip(ip, exact=refusal.rule == "metadata"):
            return None
        return refusal

    def is_allowed_ip(self, ip: str) -> bool:
        """Whether a connection to ``ip`` is permitted; anything unparsable is not (fail closed)."""
        try:
            return self.refusal(parse_address(ip)) is None
        except ValueError:
            return False

    # --- with DNS

    async def check(self, url: str, field: str = "callback_url") -> list[str]:
        """``check_syntax``, then resolve: every address must pass, since the
        connection may use any.

        Returns the addresses. Raises UrlRefused; DNS failures propagate as OSError
        (``socket.gaierror``), which is transient, not a verdict on the URL.
        """
        target = self.target(url, field)
        if target.ip is not None:
            return [target.host]
        addresses = await self.resolve(target.host, target.port)
        if self.allow.covers_host(target.host):
            return addresses
        for address in addresses:
            refusal = self._address_refusal(address)
            if refusal is not None:
                raise UrlRefused(
                    f"{field}: host {target.host} resolves to {address}, {refusal.describe()}",
                    rule=refusal.rule,
                    field=field,
                )
        return addresses

    async def resolve(self, host: str, port: int) -> list[str]:
        """The injected resolver's answer; an empty one is a DNS failure
        (``gaierror``), not a pass."""
        addresses = await self._resolver(normalize_hostname(host), port)
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} has no addresses")
        return addresses

    async def resolve_allowed(self, host: str, port: int, field: str = "url") -> list[str]:
        """Resolve and keep only the permitted addresses; UrlRefused if none is left.

        This is the connect-time screen (``guarded_session``): dropping rather than refusing
        outright means a rebinding answer can at worst remove targets, never add an internal one.
        """
        addresses = await self.resolve(host, port)
        if self.allow.covers_host(host):
            return addresses
        kept = [a for a in addresses if self._address_refusal(a) is None]
        if not kept:
            first = addresses[0]
            refusal = self._address_refusal(first) or Refusal("malformed", "not an IP address")
            raise UrlRefused(
                f"{field}: host {normalize_hostname(host)} resolves to {first}, "
                f"{refusal.describe()}",
                rule=refusal.rule,
                field=field,
            )
        return kept

    def _address_refusal(self, address: str) -> Refusal | None:
        try:
            return self.refusal(parse_address(address))
        except ValueError:
            return Refusal("malformed", "not an IP address")
