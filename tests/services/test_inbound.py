"""Kling calling us back: genuine callbacks move tasks at once; forged, stale, duplicate and
out-of-order ones change nothing and learn nothing."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import standardwebhooks

from kling_gateway.http.app import create_app
from kling_gateway.services import admin, money
from kling_gateway.upstream.simulator import ManualClock, SimulatorConfig, create_simulator_app
from tests.conftest import TEXT2VIDEO, TimeoutASGITransport, make_settings

SECRET = "whsec_" + base64.b64encode(b"kling-console-webhook-secret-32b").decode()


class Callbacks:
    """Gateway + simulator wired both ways in-process: the simulator's callbacks reach the gateway
    app."""

    def __init__(
        self, client: httpx.AsyncClient, app: Any, sim: Any, key: str, clock: ManualClock
    ) -> None:
        self.client, self.app, self.sim, self.key, self.clock = client, app, sim, key, clock
        self.gw = app.state.gateway

    async def create(self) -> str:
        resp = await self.client.post(
            TEXT2VIDEO,
            json={"model_name": "kling-v1", "prompt": "x", "external_task_id": "mine"},
            headers={"Authorization": f"Bearer {self.key}"},
        )
        assert resp.status_code == 200, resp.text
        return str(resp.json()["data"]["task_id"])

    async def status(self, task_id: str) -> str:
        resp = await self.client.get(
            f"{TEXT2VIDEO}/{task_id}", headers={"Authorization": f"Bearer {self.key}"}
        )
        return str(resp.json()["data"]["task_status"])

    async def settle(self, seconds: float) -> None:
        """Advance only the clock and deliver the simulator's callbacks; no polling at all."""
        self.clock.advance(seconds)
        self.sim.advance()
        await self.sim.callbacks.drain()


@pytest.fixture
async def cb(tmp_path: Path) -> AsyncIterator[Callbacks]:
    clock = ManualClock()
    settings = make_settings(
        tmp_path,
        public_base_url="http://gw",
        upstream_webhook_secret=SECRET,
        first_poll_seconds=3600,
    )
    holder: dict[str, Any] = {}

    async def to_gateway(request: httpx.Request) -> httpx.Response:
        transport = httpx.ASGITransport(app=holder["app"])
        return await transport.handle_async_request(request)

    hook_client = httpx.AsyncClient(transport=httpx.MockTransport(to_gateway))
    sim_app = create_simulator_app(
        SimulatorConfig(seed=3, webhook_secret=SECRET), clock=clock, callback_client=hook_client
    )
    app = create_app(
        settings, transport=TimeoutASGITransport(sim_app, 1.0), clock=clock, run_poller=False
    )
    holder["app"] = app
    async with sim_app.router.lifespan_context(sim_app), app.router.lifespan_context(app):
        gw = app.state.gateway
        alice = await admin.create_user(gw, "alice")
        await money.adjust(gw, alice.id, "1000", debit=False, note="test funds")
        issued = await admin.create_key(gw, "alice")
        assert issued.api_key is not None
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gw"
        ) as client:
            yield Callbacks(client, app, sim_app.state.sim, issued.api_key, clock)
    await hook_client.aclose()


async def test_callbacks_alone_bring_the_task_to_succeed(cb: Callbacks) -> None:
    task_id = await cb.create()
    await cb.settle(0.1)
    upstream = next(iter(cb.sim.store.tasks.values()))
    assert upstream.spec.callback_url == cb.gw.callbacks.for_task(task_id)  # ours, not the client's
    assert await cb.status(task_id) == "submitted"
    await cb.settle(1.5)
    assert await cb.status(task_id) == "processing"
    await cb.settle(4)
    assert await cb.status(task_id) == "succeed"
    record = await cb.gw.tasks.get(task_id)
    assert record is not None and record.poll_attempts <= 3 and record.result_json


def _signed(body: bytes, msg_id: str = "msg_1", secret: str = SECRET) -> dict[str, str]:
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    signature = standardwebhooks.Webhook(secret).sign(msg_id, now, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


async def _post(cb: Callbacks, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return await cb.client.post(path, content=body, headers=headers)


async def test_forged_callbacks_are_refused_like_unknown_urls(cb: Callbacks) -> None:
    task_id = await cb.create()
    upstream = next(iter(cb.sim.store.tasks.values()))
    good_url = str(cb.gw.callbacks.for_task(task_id)).removeprefix("http://gw")
    body = orjson.dumps(
        {
            "task_id": upstream.task_id,
            "task_status": "succeed",
            "task_info": {"external_task_id": task_id},
            "task_result": {
                "videos": [{"id": "v", "url": "https://evil.example/x.mp4", "duration": "5"}]
            },
        }
    )
    cases = [
        (good_url.rsplit("/", 1)[0] + "/" + "0" * 40, _signed(body)),  # wrong token
        (good_url.replace(task_id, "100000000000000001"), _signed(body)),  # token of another task
        (good_url, {"content-type": "application/json"}),  # unsigned
        (
            good_url,
            _signed(body, secret="whsec_" + base64.b64encode(b"x" * 32).decode()),
        ),  # wrong secret
    ]
    unknown = await _post(cb, "/kling/no/such/path", body, {})
    for path, headers in cases:
        resp = await _post(cb, path, body, headers)
        assert resp.status_code == 404 and resp.json()["code"] == 1203
        assert resp.json()["message"] == "requested resource does not exist"
    assert unknown.status_code == 404
    assert await cb.status(task_id) == "submitted"


async def test_callback_for_another_upstream_task_is_ignored(cb: Callbacks) -> None:
    task_id = await cb.create()
    url = str(cb.gw.callbacks.for_task(task_id)).removeprefix("http://gw")
    body = orjson.dumps(
        {"task_id": "999999999999999999", "task_status": "succeed", "task_info": {}}
    )
    assert (await _post(cb, url, body, _signed(body))).status_code == 404
    assert await cb.status(task_id) == "submitted"


async def test_duplicate_and_out_of_order_callbacks_change_nothing(cb: Callbacks) -> None:
    task_id = await cb.create()
    upstream = next(iter(cb.sim.store.tasks.values()))
    url = str(cb.gw.callbacks.for_task(task_id)).removeprefix("http://gw")

    def body(status: str) -> bytes:
        extra: dict[str, Any] = {}
        if status == "succeed":
            extra["task_result"] = {
                "videos": [{"id": "v1", "url": "https://cdn/x.mp4", "duration": "5.1"}]
            }
        return orjson.dumps(
            {
                "task_id": upstream.task_id,
                "task_status": status,
                "task_info": {"external_task_id": task_id},
                **extra,
            }
        )

    succeed = body("succeed")
    assert (await _post(cb, url, succeed, _signed(succeed, "m1"))).status_code == 200
    assert await cb.status(task_id) == "succeed"
    for late in ("processing", "submitted", "failed"):  # stale or contradicting: ignored
        b = body(late)
        assert (await _post(cb, url, b, _signed(b, "m-" + late))).status_code == 200
    assert (await _post(cb, url, succeed, _signed(succeed, "m1"))).status_code == 200  # duplicate
    assert await cb.status(task_id) == "succeed"
