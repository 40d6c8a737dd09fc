"""Callbacks: bare task objects per status change, in order, optionally Standard-Webhooks signed."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from kling_gateway.upstream.simulator import (
    ManualClock,
    SimulatorConfig,
    create_simulator_app,
    get_simulator,
)

from .conftest import Harness

SECRET = "whsec_dGVzdHNlY3JldHRlc3RzZWNyZXR0ZXN0c2VjcmV0MTI="
HOOK = "https://receiver.test/kling"


class Receiver:
    """Records every callback; ``fail_first`` answers 500 to that many attempts first."""

    def __init__(self, fail_first: int = 0) -> None:
        self.requests: list[httpx.Request] = []
        self.fail_first = fail_first
        self.attempts = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        if self.attempts <= self.fail_first:
            return httpx.Response(500)
        self.requests.append(request)
        return httpx.Response(200)

    def statuses(self) -> list[str]:
        return [json.loads(r.content)["task_status"] for r in self.requests]


@pytest.fixture
async def running(
    clock: ManualClock, config: SimulatorConfig
) -> AsyncIterator[Callable[[Receiver], Any]]:
    """Start a simulator (lifespan entered) whose callback client talks to a Receiver."""
    stack: list[Any] = []

    async def start(receiver: Receiver) -> Harness:
        callback_client = httpx.AsyncClient(transport=httpx.MockTransport(receiver))
        app = create_simulator_app(config, clock=clock, callback_client=callback_client)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim")
        stack.append((lifespan, client, callback_client))
        return Harness(app, clock, client)

    yield start
    for lifespan, client, callback_client in stack:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
        await callback_client.aclose()


async def wait_for(predicate: Callable[[], bool]) -> None:
    """Poll real time briefly: deliveries happen on background tasks."""
    for _ in range(400):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached within 2 s")


async def test_callbacks_fire_on_their_own_in_order(running: Any) -> None:
    receiver = Receiver()
    h: Harness = await running(receiver)
    created = (
        await h.create({"prompt": "p", "callback_url": HOOK, "external_task_id": "cb-1"})
    ).json()["data"]
    await wait_for(lambda: len(receiver.requests) == 1)
    h.clock.advance(1)  # no request needed: the background timer notices
    await wait_for(lambda: len(receiver.requests) == 2)
    h.clock.advance(3)
    await wait_for(lambda: len(receiver.requests) == 3)
    assert receiver.statuses() == ["submitted", "processing", "succeed"]
    first = receiver.requests[0]
    assert str(first.url) == HOOK and first.method == "POST"
    assert first.headers["content-type"] == "application/json; charset=utf-8"
    assert "webhook-signature" not in first.headers
    bodies = [json.loads(r.content) for r in receiver.requests]
    assert all("code" not in b and b["task_id"] == created["task_id"] for b in bodies)
    assert bodies[0]["task_info"] == {"external_task_id": "cb-1"}
    final = bodies[2]
    assert final["task_result"]["videos"][0]["duration"] == "5.1"
    assert final["final_unit_deduction"] == "2.5"
    assert final["final_balance_deduction"] == {"quota": "0", "list_price": "0"}
    # the query view matches the callback minus the callback-only billing field
    queried = (await h.get(f"/v1/videos/text2video/{created['task_id']}")).json()["data"]
    assert {k: v for k, v in final.items() if k != "final_balance_deduction"} == queried
    assert h.sim.stats()["callbacks_sent"] == 3


async def test_failed_task_callbacks(running: Any, config: SimulatorConfig) -> None:
    config.task_failure_rate = 1.0
    receiver = Receiver()
    h: Harness = await running(receiver)
    await h.create({"prompt": "p", "callback_url": HOOK})
    h.clock.advance(10)  # both transitions become due at once and still go out in order
    await wait_for(lambda: len(receiver.requests) == 3)
    assert receiver.statuses() == ["submitted", "processing", "failed"]
    assert json.loads(receiver.requests[2].content)["final_unit_deduction"] == "0"


async def test_signed_callbacks_verify(running: Any, config: SimulatorConfig) -> None:
    config.webhook_secret = SECRET
    receiver = Receiver()
    h: Harness = await running(receiver)
    await h.create({"prompt": "p", "callback_url": HOOK})
    h.clock.advance(5)
    await wait_for(lambda: len(receiver.requests) == 3)
    ids = set()
    for request in receiver.requests:
        headers = dict(request.headers)
        payload = Webhook(SECRET).verify(request.content, headers)
        assert payload["task_status"] in {"submitted", "processing", "succeed"}
        # and independently of the library, per kling-api.md §6
        key = base64.b64decode(SECRET.removeprefix("whsec_"))
        signed = (
            f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + request.content
        )
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        assert headers["webhook-signature"] == f"v1,{expected}"
        ids.add(headers["webhook-id"])
    assert len(ids) == 3


async def test_retries_keep_order(running: Any) -> None:
    receiver = Receiver(fail_first=2)
    h: Harness = await running(receiver)
    await h.create({"prompt": "p", "callback_url": HOOK})
    h.clock.advance(5)
    await wait_for(lambda: len(receiver.requests) == 3)
    assert receiver.statuses() == ["submitted", "processing", "succeed"]
    assert receiver.attempts == 5


async def test_undeliverable_callbacks_are_dropped(running: Any) -> None:
    receiver = Receiver(fail_first=1000)
    h: Harness = await running(receiver)
    await h.create({"prompt": "p", "callback_url": HOOK})
    await wait_for(lambda: h.sim.callbacks.failed == 1)
    assert receiver.attempts == 3  # first try + 2 retries
    h.clock.advance(5)
    await wait_for(lambda: h.sim.callbacks.failed == 3)
    stats = h.sim.stats()
    assert stats["callbacks_sent"] == 0 and stats["callbacks_pending"] == 0


async def test_callbacks_queued_before_start_go_out_once_running(
    clock: ManualClock, config: SimulatorConfig
) -> None:
    receiver = Receiver()
    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as callback_client:
        app = create_simulator_app(config, clock=clock, callback_client=callback_client)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://sim"
        ) as client:
            h = Harness(app, clock, client)
            await h.create({"prompt": "p", "callback_url": HOOK})
            clock.advance(5)
            h.sim.advance()
            assert h.sim.callbacks.pending == 3 and receiver.requests == []
            async with app.router.lifespan_context(app):
                await h.sim.callbacks.drain()
            assert receiver.statuses() == ["submitted", "processing", "succeed"]


async def _serve_loopback(received: list[tuple[dict[str, str], bytes]]) -> asyncio.Server:
    """A real HTTP/1.1 receiver on 127.0.0.1, so the simulator's own httpx client is exercised."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")[1:]
                headers = {
                    k.lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in lines if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                received.append((headers, body))
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def test_real_loopback_delivery_and_clean_shutdown(
    clock: ManualClock, config: SimulatorConfig
) -> None:
    received: list[tuple[dict[str, str], bytes]] = []
    server = await _serve_loopback(received)
    port = server.sockets[0].getsockname()[1]
    config.webhook_secret = SECRET
    app = create_simulator_app(config, clock=clock)  # owns its callback client
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://sim"
            ) as client,
        ):
            h = Harness(app, clock, client)
            await h.create({"prompt": "p", "callback_url": f"http://127.0.0.1:{port}/hook"})
            clock.advance(5)
            await wait_for(lambda: len(received) == 3)
        assert [json.loads(body)["task_status"] for _, body in received] == [
            "submitted",
            "processing",
            "succeed",
        ]
        for headers, body in received:
            Webhook(SECRET).verify(body, headers)
        assert get_simulator(app).callbacks._client is None  # closed by the lifespan
    finally:
        server.close()
        await server.wait_closed()


async def test_other_kinds_call_back_with_their_own_task_object(running: Any) -> None:
    receiver = Receiver()
    h: Harness = await running(receiver)
    parent = (
        await h.client.post(
            "/v1/videos/effects",
            json={"effect_scene": "x", "input": {"image": "https://example.com/a.png"}},
            headers=h.auth(),
        )
    ).json()["data"]
    h.clock.advance(4)  # the read below catches up with the clock
    source = (await h.get(f"/v1/videos/effects/{parent['task_id']}")).json()["data"]
    video = source["task_result"]["videos"][0]
    body = {"video_id": video["id"], "callback_url": HOOK, "external_task_id": "cb-x"}
    response = await h.client.post("/v1/videos/video-extend", json=body, headers=h.auth())
    created = response.json()["data"]
    h.clock.advance(4)
    await wait_for(lambda: len(receiver.requests) == 3)
    assert receiver.statuses() == ["submitted", "processing", "succeed"]
    final = json.loads(receiver.requests[2].content)
    assert final["task_id"] == created["task_id"]
    assert final["task_info"] == {"parent_video": video, "external_task_id": "cb-x"}
    assert final["task_result"]["videos"][0]["duration"] == "9.6"
    queried = (await h.get(f"/v1/videos/video-extend/{created['task_id']}")).json()["data"]
    assert {k: v for k, v in final.items() if k != "final_balance_deduction"} == queried
