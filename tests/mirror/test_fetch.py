"""download(): the simulator's MP4 over loopback, the size cap, the deadline, origin errors."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from kling_gateway.mirror.fetch import (
    AiohttpFetcher,
    BadStatus,
    FetchFailed,
    FetchTimeout,
    HttpxFetcher,
    TooLarge,
    download,
)
from kling_gateway.mirror.storage import LocalDirStore
from kling_gateway.upstream.simulator import create_simulator_app
from tests.mirror.support import MP4, Origin, origin_server

KEY = "20250101/1/0.mp4"


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    async with origin_server() as o:
        yield o


@pytest.fixture
async def fetcher() -> AsyncIterator[AiohttpFetcher]:
    f = AiohttpFetcher()
    try:
        yield f
    finally:
        await f.aclose()


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.mark.parametrize("name", ["video.mp4", "chunked.mp4"])
async def test_downloads_the_real_mp4(
    tmp_path: Path, origin: Origin, fetcher: AiohttpFetcher, name: str
) -> None:
    store = LocalDirStore(tmp_path)
    size = await download(fetcher, origin.url(name), store, KEY, max_bytes=1 << 20, timeout=5)
    assert size == len(MP4)
    data = (tmp_path / KEY).read_bytes()
    assert data == MP4 and data[4:8] == b"ftyp"
    assert leftovers(tmp_path) == [tmp_path / KEY]


@pytest.mark.parametrize(
    "name", ["video.mp4", "chunked.mp4"]
)  # declared length, then counted bytes
async def test_size_cap_keeps_nothing(
    tmp_path: Path, origin: Origin, fetcher: AiohttpFetcher, name: str
) -> None:
    store = LocalDirStore(tmp_path)
    with pytest.raises(TooLarge) as caught:
        await download(fetcher, origin.url(name), store, KEY, max_bytes=len(MP4) - 1, timeout=5)
    assert caught.value.permanent
    assert leftovers(tmp_path) == []


async def test_exactly_the_cap_is_allowed(
    tmp_path: Path, origin: Origin, fetcher: AiohttpFetcher
) -> None:
    store = LocalDirStore(tmp_path)
    size = await download(
        fetcher, origin.url("chunked.mp4"), store, KEY, max_bytes=len(MP4), timeout=5
    )
    assert size == len(MP4)


async def test_deadline_aborts_a_stalled_body(
    tmp_path: Path, origin: Origin, fetcher: AiohttpFetcher
) -> None:
    store = LocalDirStore(tmp_path)
    with pytest.raises(FetchTimeout) as caught:
        await download(fetcher, origin.url("slow.mp4"), store, KEY, max_bytes=1 << 20, timeout=0.2)
    assert not caught.value.permanent
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(("name", "permanent"), [("gone.mp4", True), ("busy.mp4", False)])
async def test_origin_status(
    tmp_path: Path, origin: Origin, fetcher: AiohttpFetcher, name: str, permanent: bool
) -> None:
    with pytest.raises(BadStatus) as caught:
        await download(
            fetcher, origin.url(name), LocalDirStore(tmp_path), KEY, max_bytes=1 << 20, timeout=5
        )
    assert caught.value.permanent is permanent
    assert leftovers(tmp_path) == []


async def test_connection_refused_is_transient(tmp_path: Path, fetcher: AiohttpFetcher) -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(FetchFailed) as caught:
        await download(
            fetcher,
            f"http://127.0.0.1:{port}/x.mp4",
            LocalDirStore(tmp_path),
            KEY,
            max_bytes=1024,
            timeout=5,
        )
    assert not caught.value.permanent


async def test_injected_aiohttp_session_is_used_and_left_open(
    tmp_path: Path, origin: Origin
) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        fetcher = AiohttpFetcher(session)
        await download(
            fetcher,
            origin.url("video.mp4"),
            LocalDirStore(tmp_path),
            KEY,
            max_bytes=1 << 20,
            timeout=5,
        )
        await fetcher.aclose()
        assert not session.closed  # its owner closes it


async def test_httpx_fetcher_against_the_simulator_app(tmp_path: Path) -> None:
    """The simulator's own results route, reached in-process (how the env-fixture tests fetch)."""
    sim_app = create_simulator_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim_app)) as client:
        fetcher = HttpxFetcher(client)
        with pytest.raises(BadStatus) as caught:  # no such video: the simulator answers 404
            await download(
                fetcher,
                "http://sim/results/nope.mp4",
                LocalDirStore(tmp_path),
                KEY,
                max_bytes=9999,
                timeout=5,
            )
        assert caught.value.permanent
