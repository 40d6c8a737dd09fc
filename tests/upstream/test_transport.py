"""Both upstream transports against the simulator on a real loopback socket: what reaches
KlingClient must not depend on which HTTP library carried it."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn

from kling_gateway.upstream.auth import Authorizer, Credentials
from kling_gateway.upstream.client import KlingClient, Outcome, UpstreamError
from kling_gateway.upstream.simulator import SimulatorConfig, create_simulator_app
from kling_gateway.upstream.transport import (
    AiohttpTransport,
    HttpxTransport,
    Transport,
    TransportError,
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def sim_url() -> AsyncIterator[tuple[str, SimulatorConfig]]:
    port = _free_port()
    config = SimulatorConfig(seed=1, public_base_url=f"http://127.0.0.1:{port}")
    server = uvicorn.Server(
        uvicorn.Config(create_simulator_app(config), host="127.0.0.1", port=port, log_level="error")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers only this flag
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}", config
    server.should_exit = True
    await task


def _transport(kind: str, read_timeout: float = 5.0) -> Transport:
    if kind == "aiohttp":
        return AiohttpTransport(connect_timeout=2.0, read_timeout=read_timeout, max_connections=10)
    return HttpxTransport(httpx.AsyncClient(timeout=httpx.Timeout(2.0, read=read_timeout)))


def _client(transport: Transport, url: str) -> KlingClient:
    return KlingClient(transport, url, Authorizer(Credentials("sim-ak", "sim-sk")))


@pytest.mark.parametrize("kind", ["aiohttp", "httpx"])
async def test_create_and_get_over_a_socket(
    sim_url: tuple[str, SimulatorConfig], kind: str
) -> None:
    url, _ = sim_url
    transport = _transport(kind)
    try:
        client = _client(transport, url)
        created = await client.create({"model_name": "kling-v1", "prompt": "x"}, "ext-1")
        assert created.status == "submitted" and created.external_task_id == "ext-1"
        found = await client.find_by_external_id("ext-1")
        assert found is not None and found.task_id == created.task_id
        assert await client.find_by_external_id("nope") is None
        with pytest.raises(UpstreamError) as info:
            await client.create({"model_name": "kling-v1", "prompt": "x"}, "ext-1")
        assert info.value.code == 1201 and info.value.outcome is Outcome.ABSENT
    finally:
        await transport.aclose()


@pytest.mark.parametrize("kind", ["aiohttp", "httpx"])
async def test_connection_refused_was_never_sent(kind: str) -> None:
    transport = _transport(kind)
    try:
        with pytest.raises(TransportError) as info:
            await transport.request("GET", f"http://127.0.0.1:{_free_port()}/v1/x", {}, None)
        assert info.value.maybe_sent is False
    finally:
        await transport.aclose()


@pytest.mark.parametrize("kind", ["aiohttp", "httpx"])
async def test_read_timeout_may_have_been_sent(
    sim_url: tuple[str, SimulatorConfig], kind: str
) -> None:
    url, config = sim_url
    config.hang_rate = 1.0
    config.hang_seconds = 5.0
    transport = _transport(kind, read_timeout=0.3)
    try:
        client = _client(transport, url)
        started = time.monotonic()
        with pytest.raises(UpstreamError) as info:
            await client.create({"model_name": "kling-v1", "prompt": "x"}, "ext-hang")
        assert time.monotonic() - started < 3
        assert info.value.outcome is Outcome.AMBIGUOUS
        config.hang_rate = 0.0
        assert await client.find_by_external_id("ext-hang") is not None  # it did land upstream
    finally:
        await transport.aclose()
