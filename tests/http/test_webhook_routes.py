"""Webhook routes: the user's secret (read, rotate), their task's delivery log, and the operator's
log and redeliver. The router is mounted on a small app sharing the ``env`` gateway, with the same
error handlers and envelope as ``create_app``, so these tests do not depend on how app.py wires
it."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.exceptions import HTTPException

from kling_gateway.errors import KlingError
from kling_gateway.http import envelope
from kling_gateway.http.routes.webhooks import router
from kling_gateway.services.webhooks import user_secret
from kling_gateway.worker.webhooks import WebhookWorker
from tests.conftest import Env

ADMIN = "admin-token-123"
HOOK = "https://hooks.example.com/k"


class StatusSender:
    """Answers every post with ``status`` without touching the network."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.posts: list[dict[str, str]] = []

    async def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:  # noqa: ASYNC109
        self.posts.append(headers)
        return self.status


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"admin_token": ADMIN}


@pytest.fixture
async def api(env: Env) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.add_middleware(envelope.RequestIdMiddleware)
    app.add_exception_handler(KlingError, envelope.on_kling_error)
    app.add_exception_handler(HTTPException, envelope.on_http_error)
    app.include_router(router(lambda: env.gw))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gw"
    ) as client:
        yield client


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN}"}


async def test_secret_read_and_rotate(env: Env, api: httpx.AsyncClient) -> None:
    first = await api.get("/kling/v1/account/webhook-secret", headers=env.auth())
    assert first.status_code == 200
    body = first.json()
    assert body["code"] == 0 and body["request_id"] == first.headers["x-request-id"]
    secret = body["data"]["secret"]
    assert secret.startswith("whsec_")
    again = await api.get("/kling/v1/account/webhook-secret", headers=env.auth())
    assert again.json()["data"]["secret"] == secret
    assert (await api.get("/kling/v1/account/webhook-secret", headers=env.auth("bob"))).json()[
        "data"
    ]["secret"] != secret

    rotated = await api.post("/kling/v1/account/webhook-secret/rotate", headers=env.auth())
    new = rotated.json()["data"]["secret"]
    assert rotated.status_code == 200 and new != secret
    alice = await env.gw.accounts.get_user("alice")
    assert alice is not None and await user_secret(env.gw, alice.id) == new


async def test_secret_routes_need_a_key(api: httpx.AsyncClient) -> None:
    resp = await api.get("/kling/v1/account/webhook-secret")
    assert resp.status_code == 401 and resp.json()["code"] in (1000, 1001, 1002)
    resp = await api.post(
        "/kling/v1/account/webhook-secret/rotate", headers={"Authorization": "Bearer sk-x"}
    )
    assert resp.status_code == 401


async def test_user_sees_own_task_deliveries_only(env: Env, api: httpx.AsyncClient) -> None:
    created = await env.create(
        {"model_name": "kling-v1", "prompt": "x", "callback_url": HOOK, "external_task_id": "mine"}
    )
    task_id = created.json()["data"]["task_id"]
    await env.run_until_idle(8)
    sender = StatusSender(503)
    worker = WebhookWorker(env.gw, sender=sender, rng=random.Random(0))
    assert await worker.run_once() == 3

    for ident in (task_id, "mine"):
        resp = await api.get(f"/kling/v1/videos/text2video/{ident}/deliveries", headers=env.auth())
        assert resp.status_code == 200, resp.text
        data = resp.json()["data"]
        assert [d["task_status"] for d in data] == ["submitted", "processing", "succeed"]
        for d in data:
            assert d["task_id"] == task_id and d["url"] == HOOK and d["status"] == "pending"
            assert d["attempts"] == 1 and d["last_status_code"] == 503
            (attempt,) = d["attempt_log"]
            assert attempt["status_code"] == 503 and attempt["error"] == "HTTP 503"
            assert isinstance(attempt["latency_ms"], int)
            assert "payload" not in d
        assert {d["delivery_id"] for d in data} == {h["webhook-id"] for h in sender.posts}

    for who, ident in (("bob", task_id), ("alice", "no-such-task")):
        resp = await api.get(
            f"/kling/v1/videos/text2video/{ident}/deliveries", headers=env.auth(who)
        )
        assert resp.status_code == 404 and resp.json()["code"] == 1203


async def test_admin_log_and_redeliver(env: Env, api: httpx.AsyncClient) -> None:
    created = await env.create({"model_name": "kling-v1", "prompt": "x", "callback_url": HOOK})
    task_id = created.json()["data"]["task_id"]
    worker = WebhookWorker(env.gw, sender=StatusSender(200))
    assert await worker.run_once() == 1

    resp = await api.get(f"/admin/v1/tasks/{task_id}/deliveries", headers=admin())
    assert resp.status_code == 200, resp.text
    (entry,) = resp.json()["data"]
    assert entry["status"] == "delivered" and entry["attempts"] == 1
    assert entry["payload"].startswith("{") and task_id in entry["payload"]
    assert entry["attempt_log"][0]["status_code"] == 200

    env.clock.advance(2)
    resp = await api.post(f"/admin/v1/deliveries/{entry['delivery_id']}/redeliver", headers=admin())
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"] == {
        "delivery_id": entry["delivery_id"],
        "task_id": task_id,
        "status": "pending",
        "next_attempt_at": env.gw.now_ms(),
    }
    assert await worker.run_once() == 1
    (entry,) = (await api.get(f"/admin/v1/tasks/{task_id}/deliveries", headers=admin())).json()[
        "data"
    ]
    assert (
        entry["status"] == "delivered" and entry["attempts"] == 2 and len(entry["attempt_log"]) == 2
    )

    for path, method in (
        ("/admin/v1/tasks/123/deliveries", "GET"),
        ("/admin/v1/deliveries/msg_nope/redeliver", "POST"),
    ):
        resp = await api.request(method, path, headers=admin())
        assert resp.status_code == 404 and resp.json()["code"] == 1203


async def test_admin_routes_need_the_admin_token(env: Env, api: httpx.AsyncClient) -> None:
    for headers in ({}, env.auth(), {"Authorization": "Bearer wrong"}):
        resp = await api.get("/admin/v1/tasks/1/deliveries", headers=headers)
        assert resp.status_code == 401
        resp = await api.post("/admin/v1/deliveries/x/redeliver", headers=headers)
        assert resp.status_code == 401


@pytest.mark.parametrize("settings_overrides", [{}])
async def test_admin_routes_are_off_without_a_token(api: httpx.AsyncClient) -> None:
    resp = await api.get("/admin/v1/tasks/1/deliveries", headers=admin())
    assert resp.status_code == 404
