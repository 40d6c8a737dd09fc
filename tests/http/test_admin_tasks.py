"""``/admin/v1/tasks``: the operator finds a task as the client API does (our id or the client's
external_task_id, with ``?user=``), sees user names and the charge, and a bad filter is a 400."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Env, both_databases

database_url = both_databases  # the NUL look-ups must answer 404 on PostgreSQL too
ADMIN = "admin-token-123"
BODY = {"model_name": "kling-v1", "prompt": "fox", "external_task_id": "fox-1"}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"admin_token": ADMIN, "channel_probe_seconds": 0}


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN}"}


async def two_foxes(env: Env) -> dict[str, str]:
    ids = {}
    for user in ("alice", "bob"):
        resp = await env.create(BODY, user=user)
        assert resp.status_code == 200, resp.text
        ids[user] = resp.json()["data"]["task_id"]
    return ids


async def test_a_task_by_external_id_and_user(env: Env) -> None:
    ids = await two_foxes(env)
    resp = await env.client.get("/admin/v1/tasks/fox-1?user=bob", headers=admin())
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    assert data["task_id"] == ids["bob"] and data["user"] == "bob" and data["upstream_task_id"]
    cost = {k: data["cost"][k] for k in ("reserved", "settled", "refunded")}
    assert cost == {"reserved": "1", "settled": None, "refunded": None}  # 0.2/s × 5 s
    by_id = (await env.client.get(f"/admin/v1/tasks/{ids['alice']}", headers=admin())).json()
    assert by_id["data"]["external_task_id"] == "fox-1" and by_id["data"]["user"] == "alice"
    path = "/admin/v1/tasks/fox-1/deliveries?user=alice"
    deliveries = await env.client.get(path, headers=admin())
    assert deliveries.status_code == 200 and deliveries.json()["data"] == []


async def test_an_external_id_of_several_users_is_a_400_naming_them(env: Env) -> None:
    await two_foxes(env)
    for path in ("/admin/v1/tasks/fox-1", "/admin/v1/tasks/fox-1/deliveries"):
        resp = await env.client.get(path, headers=admin())
        assert resp.status_code == 400 and resp.json()["code"] == 1201, resp.text
        assert "several users (alice, bob)" in resp.json()["message"]


@pytest.mark.parametrize(
    "path",
    [
        "/admin/v1/tasks/fox-9",
        "/admin/v1/tasks/fox-1?user=carol",
        "/admin/v1/tasks/fox-1?user=a%00b",
        "/admin/v1/tasks/fox%00",
        "/admin/v1/tasks/fox-9/deliveries",
    ],
)
async def test_unknown_tasks_and_users_are_404(env: Env, path: str) -> None:
    await two_foxes(env)
    resp = await env.client.get(path, headers=admin())
    assert resp.status_code == 404 and resp.json()["code"] == 1203, resp.text


async def test_list_filters_and_names_users(env: Env) -> None:
    ids = await two_foxes(env)
    resp = await env.client.get("/admin/v1/tasks?user=bob", headers=admin())
    assert resp.status_code == 200, resp.text
    found = resp.json()["data"]["items"]
    assert [(t["task_id"], t["user"]) for t in found] == [(ids["bob"], "bob")]
    every = await env.client.get("/admin/v1/tasks?page_size=1", headers=admin())
    assert len(every.json()["data"]["items"]) == 1
    status = every.json()["data"]["items"][0]["status"]
    same = (await env.client.get(f"/admin/v1/tasks?status={status}", headers=admin())).json()
    assert {t["user"] for t in same["data"]["items"]} == {"alice", "bob"}


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("status=bogus", "status: 'bogus' is not a task status (allowed: queued, submitted,"),
        ("status=SUCCEED", "is not a task status"),
        ("page_size=0", "page_size: must be an integer from 1 to 500"),
        ("page_size=" + "9" * 5000, "page_size: must be an integer"),
        ("page_size=ten", "page_size: must be an integer"),
    ],
)
async def test_a_bad_list_filter_is_a_400(env: Env, query: str, fragment: str) -> None:
    resp = await env.client.get(f"/admin/v1/tasks?{query}", headers=admin())
    assert resp.status_code == 400 and resp.json()["code"] == 1201, resp.text
    assert fragment in resp.json()["message"]


async def test_the_list_needs_the_admin_token(env: Env) -> None:
    resp = await env.client.get("/admin/v1/tasks", headers={"Authorization": "Bearer nope"})
    assert resp.status_code == 401
