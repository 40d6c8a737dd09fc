"""The aiohttp side: a session that cannot reach a refused address, and a
redirect-following ``fetch``.

Checking a URL and then handing it to a stock client leaves two gaps: DNS may answer
differently at connect time (rebinding), and a redirect may point anywhere.
``guarded_session`` closes both inside aiohttp:

* its connector resolves through ``GuardResolver``, which drops refused addresses and raises when
  none is left, so whatever DNS says at connect time is screened again;
* aiohttp skips the resolver for literal-IP hosts, so a client middleware runs ``check_syntax`` on
  every request, including each hop of aiohttp's own redirect following.

``fetch`` adds a clean per-hop ``UrlRefused`` (with the mixed-answer rule of ``UrlGuard.check``)
before a single byte is sent to a redirect target.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp import hdrs
from aiohttp.abc import AbstractResolver, ResolveResult
from multidict import CIMultiDict
from yarl import URL

from kling_gateway.netguard.guard import UrlGuard, UrlRefused

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CREDENTIAL_HEADERS = (hdrs.AUTHORIZATION, hdrs.COOKIE, hdrs.PROXY_AUTHORIZATION)
_BODY_HEADERS = (hdrs.CONTENT_TYPE, hdrs.CONTENT_LENGTH, hdrs.CONTENT_ENCODING)
_NUMERIC = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV


class GuardResolver(AbstractResolver):
    """aiohttp resolver that only ever returns addresses the guard permits."""

    def __init__(self, guard: UrlGuard, field: str = "url") -> None:
        self._guard = guard
        self._field = field

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results: list[ResolveResult] = []
        for address in await self._guard.resolve_allowed(host, port, self._field):
            address_family = socket.AF_INET6 if ":" in address else socket.AF_INET
            if family in (socket.AF_UNSPEC, address_family):
                results.append(
                    ResolveResult(
                        hostname=host,
                        host=address.split("%", 1)[0],
                        port=port,
                        family=address_family,
                        proto=socket.IPPROTO_TCP,
                        flags=_NUMERIC,  # already numeric: nothing downstream may resolve again
                    )
                )
        if not results:
            raise socket.gaierror(
                socket.EAI_ADDRFAMILY, f"{host} has no address of family {family!r}"
            )
        return results

    async def close(self) -> None:
        return None


def _guard_middleware(guard: UrlGuard, field: str) -> aiohttp.ClientMiddlewareType:
    async def middleware(
        request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        if request.proxy is not None:
            # A proxy resolves the target itself, out of the guard's sight.
            raise ValueError("guarded sessions do not support proxies")
        guard.check_syntax(str(request.url), field)
        return await handler(request)

    return middleware


def guarded_session(
    guard: UrlGuard, *, timeout: aiohttp.ClientTimeout, limit: int = 100, field: str = "url"
) -> aiohttp.ClientSession:
    """An aiohttp session for untrusted URLs. Create it inside the running loop;
    close it (``async with``).

    Safe even with aiohttp's default ``allow_redirects=True`` (every hop is
    screened), though ``fetch`` gives the clearer errors. ``trust_env=False`` because
    an environment proxy would do the resolving; no cookie jar because one client's
    server must not plant cookies that ride along to another's.
    """
    connector = aiohttp.TCPConnector(resolver=GuardResolver(guard, field), limit=limit)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        middlewares=(_guard_middleware(guard, field),),
    )


def _origin(url: URL) -> tuple[str, str | None, int | None]:
    return url.scheme, url.host, url.port


def _without(headers: Any, names: tuple[str, ...]) -> CIMultiDict[str]:
    kept: CIMultiDict[str] = CIMultiDict(headers or {})
    for name in names:
        kept.popall(name, None)
    return kept


@asynccontextmanager
async def fetch(
    session: aiohttp.ClientSession,
    guard: UrlGuard,
    method: str,
    url: str,
    *,
    field: str = "url",
    max_redirects: int = 5,
    **kw: Any,
) -> AsyncIterator[aiohttp.ClientResponse]:
    """``async with fetch(session, guard, "POST", url, data=body) as resp:`` with
    every hop checked first.

    Each URL (the first and each redirect target) passes ``guard.check`` before it is requested, so
    a refused hop raises UrlRefused without a connection. Redirects follow browser rules: 303 (and
    301/302 after POST) become a body-less GET, 307/308 replay the body (so pass bytes, not a
    stream), and credentials (Authorization, Cookie) are dropped when the origin changes.
    ``max_redirects=0`` means "don't follow": the 3xx itself is returned; exceeding a positive limit
    raises TooManyRedirects. DNS during the check is bounded by the session's connect timeout.
    """
    if "allow_redirects" in kw:
        raise TypeError("fetch follows redirects itself; pass max_redirects instead")
    method = method.upper()
    history: list[aiohttp.ClientResponse] = []
    current = url
    while True:
        async with asyncio.timeout(session.timeout.connect or session.timeout.total):
            await guard.check(current, field)
        response = await session.request(method, current, allow_redirects=False, **kw)
        location = response.headers.get(hdrs.LOCATION)
        if response.status not in _REDIRECT_STATUSES or location is None or max_redirects == 0:
            try:
                yield response
            finally:
                response.release()
                await response.wait_for_close()
            return
        response.release()
        history.append(response)
        if len(history) > max_redirects:
            raise aiohttp.TooManyRedirects(history[0].request_info, tuple(history))
        try:
            target = response.url.join(URL(location))
        except ValueError as exc:
            raise UrlRefused(
                f"{field}: redirect Location is not a valid URL ({exc})",
                rule="malformed",
                field=field,
            ) from None
        if (response.status == 303 and method != hdrs.METH_HEAD) or (
            response.status in (301, 302) and method == hdrs.METH_POST
        ):
            method = hdrs.METH_GET
            kw = {k: v for k, v in kw.items() if k not in ("data", "json")}
            kw["headers"] = _without(kw.get("headers"), _BODY_HEADERS)
        if _origin(target) != _origin(response.url):
            kw["headers"] = _without(kw.get("headers"), _CREDENTIAL_HEADERS)
        current = str(target)
