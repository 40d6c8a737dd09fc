"""The one seam under KlingClient: send bytes, get (status, bytes) back, or say whether the request
may have reached upstream.

Two implementations. ``HttpxTransport`` wraps an ``httpx.AsyncClient``, so tests plug in
``httpx.MockTransport`` fakes or the simulator's ASGI app. ``AiohttpTransport`` is the default for
real traffic: an upstream call is on every create, and costs several times less CPU through aiohttp
than through httpx/httpcore (docs/benchmarks.md).
"""

from __future__ import annotations

from typing import Protocol

import httpx


class TransportError(Exception):
    """The exchange failed. ``maybe_sent``: False only when the request provably never left (connect
    failed), which is what lets callers retry safely."""

    def __init__(self, message: str, *, maybe_sent: bool) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent


class Transport(Protocol):
    async def request(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, bytes]: ...

    async def aclose(self) -> None: ...


class HttpxTransport:
    __slots__ = ("_client",)

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def request(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, bytes]:
        try:
            resp = await self._client.request(method, url, content=body, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise TransportError(type(exc).__name__, maybe_sent=False) from exc
        # read/write timeout, reset, protocol error: it may have landed
        except httpx.HTTPError as exc:
            raise TransportError(type(exc).__name__, maybe_sent=True) from exc
        return resp.status_code, resp.content

    async def aclose(self) -> None:
        await self._client.aclose()


class AiohttpTransport:
    __slots__ = ("_session",)

    def __init__(
        self, *, connect_timeout: float, read_timeout: float, max_connections: int
    ) -> None:
        import aiohttp

        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=connect_timeout,
            sock_connect=connect_timeout,
            sock_read=read_timeout,
        )
        connector = aiohttp.TCPConnector(limit=max_connections, keepalive_timeout=30)
        self._session = aiohttp.ClientSession(
            timeout=timeout, connector=connector, auto_decompress=True, raise_for_status=False
        )

    async def request(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, bytes]:
        import aiohttp

        try:
            async with self._session.request(method, url, data=body, headers=headers) as resp:
                return resp.status, await resp.read()
        except (aiohttp.ConnectionTimeoutError, aiohttp.ClientConnectorError) as exc:
            raise TransportError(type(exc).__name__, maybe_sent=False) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransportError(type(exc).__name__, maybe_sent=True) from exc

    async def aclose(self) -> None:
        await self._session.close()
