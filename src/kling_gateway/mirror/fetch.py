"""Stream a result video from its origin URL into a ``MediaStore``, with a size cap and a deadline.

The HTTP client sits behind ``Fetcher`` so the caller decides how origin URLs are reached: the
default ``AiohttpFetcher`` accepts any ``aiohttp.ClientSession`` (hand in one whose connector
enforces the outbound address policy), and ``HttpxFetcher`` wraps an ``httpx.AsyncClient`` (tests
reach the in-process simulator through its ASGI transport this way). ``download`` never holds a
whole video in memory and never leaves a partial file behind: a body past ``max_bytes`` or a
transfer past ``timeout`` aborts the write.

Failures say whether trying again could help (``MirrorError.permanent``): the worker gives a task up
at once on a permanent one (too large, 404/403/410 at the origin) and retries transient ones later.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import httpx

from ..netguard import UrlGuard, UrlRefused, guarded_session
from .storage import MediaStore

if TYPE_CHECKING:
    import aiohttp

CHUNK_BYTES = 256 * 1024


class MirrorError(Exception):
    """A download that did not produce a stored file. ``permanent``: retrying cannot help."""

    permanent = False


class TooLarge(MirrorError):
    permanent = True


class FetchTimeout(MirrorError):
    pass


class FetchFailed(MirrorError):
    """Connection refused/reset, DNS, a broken body: the network, not the video."""


class Refused(MirrorError):
    """The outbound guard refused the URL (a private or internal target)."""

    permanent = True


class BadStatus(MirrorError):
    def __init__(self, status: int) -> None:
        super().__init__(f"origin answered HTTP {status}")
        self.status = status
        # 4xx but "try later": the URL is gone or refused for good (Kling deletes after 30 days)
        self.permanent = 400 <= status < 500 and status not in (408, 425, 429)


@dataclass(slots=True)
class Fetched:
    """An origin response whose body has not been read yet."""

    status: int
    content_length: int | None
    chunks: AsyncIterator[bytes]


class Fetcher(Protocol):
    def open(self, url: str) -> AbstractAsyncContextManager[Fetched]:
        """GET ``url``; the body is read by iterating ``chunks`` inside the context. Network
        failures surface as ``FetchFailed``, from ``open`` or from the iteration."""

    async def aclose(self) -> None: ...


class AiohttpFetcher:
    """The default fetcher. Closes only a session it created itself."""

    __slots__ = ("_chunk", "_connect_timeout", "_guard", "_owned", "_session")

    def __init__(
        self,
        session: aiohttp.ClientSession | None = None,
        *,
        guard: UrlGuard | None = None,
        connect_timeout: float = 10.0,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self._session = session
        self._owned = session is None
        # With a guard, the session it creates refuses private targets (and redirects to them).
        self._guard = guard
        self._connect_timeout = connect_timeout
        self._chunk = chunk_bytes

    def _get_session(self) -> aiohttp.ClientSession:
        # Made on first use, inside the running loop: building a fetcher is free and loop-agnostic.
        if self._session is None:
            import aiohttp

            timeout = aiohttp.ClientTimeout(
                total=None, connect=self._connect_timeout, sock_connect=self._connect_timeout
            )
            if self._guard is not None:
                self._session = guarded_session(self._guard, timeout=timeout, field="video url")
            else:
                self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    @contextlib.asynccontextmanager
    async def open(self, url: str) -> AsyncIterator[Fetched]:
        import aiohttp

        try:
            async with self._get_session().get(url, allow_redirects=True, max_redirects=5) as resp:
                yield Fetched(resp.status, resp.content_length, self._chunks(resp))
        except aiohttp.ClientError as exc:
            raise FetchFailed(f"{type(exc).__name__}: {exc}") from exc
        except UrlRefused as exc:  # the SSRF guard: this URL will never be fetched
            raise Refused(exc.reason) from exc

    async def _chunks(self, resp: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
        import aiohttp

        try:
            async for chunk in resp.content.iter_chunked(self._chunk):
                yield chunk
        except aiohttp.ClientError as exc:
            raise FetchFailed(f"{type(exc).__name__}: {exc}") from exc
        except UrlRefused as exc:  # the SSRF guard: this URL will never be fetched
            raise Refused(exc.reason) from exc

    async def aclose(self) -> None:
        if self._owned and self._session is not None:
            await self._session.close()
            self._session = None


class HttpxFetcher:
    """A fetcher over an ``httpx.AsyncClient``; ``owns``: whether ``aclose`` closes the client."""

    __slots__ = ("_client", "_owns")

    def __init__(self, client: httpx.AsyncClient, *, owns: bool = False) -> None:
        self._client = client
        self._owns = owns

    @contextlib.asynccontextmanager
    async def open(self, url: str) -> AsyncIterator[Fetched]:
        try:
            async with self._client.stream("GET", url, follow_redirects=True) as resp:
                length = resp.headers.get("content-length")
                size = int(length) if length is not None and length.isdigit() else None
                yield Fetched(resp.status_code, size, self._chunks(resp))
        except httpx.HTTPError as exc:
            raise FetchFailed(f"{type(exc).__name__}: {exc}") from exc

    @staticmethod
    async def _chunks(resp: httpx.Response) -> AsyncIterator[bytes]:
        try:
            async for chunk in resp.aiter_bytes():
                yield chunk
        except httpx.HTTPError as exc:
            raise FetchFailed(f"{type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        if self._owns:
            await self._client.aclose()


async def capped(chunks: AsyncIterator[bytes], max_bytes: int) -> AsyncIterator[bytes]:
    """Pass ``chunks`` through, raising ``TooLarge`` as soon as the total passes ``max_bytes`` (a
    missing or lying Content-Length cannot get more than one chunk past the cap)."""
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > max_bytes:
            raise TooLarge(f"the video is larger than the mirror limit of {max_bytes} bytes")
        yield chunk


async def download(
    fetcher: Fetcher,
    url: str,
    store: MediaStore,
    key: str,
    *,
    max_bytes: int,
    timeout: float,  # noqa: ASYNC109 - one deadline over connect + body, reported as FetchTimeout
) -> int:
    """Stream ``url`` into ``store`` under ``key``; returns the stored size. Raises a
    ``MirrorError`` and keeps nothing when the origin refuses, the body passes ``max_bytes`` or it
    all takes over ``timeout``."""
    try:
        async with asyncio.timeout(timeout), fetcher.open(url) as got:
            if got.status != 200:
                raise BadStatus(got.status)
            if got.content_length is not None and got.content_length > max_bytes:
                raise TooLarge(
                    f"the video is {got.content_length} bytes; "
                    f"the mirror limit is {max_bytes} bytes"
                )
            return await store.put(key, capped(got.chunks, max_bytes))
    except TimeoutError as exc:
        raise FetchTimeout(f"the download took longer than {timeout:g} s") from exc
