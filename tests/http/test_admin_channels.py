"""``/admin/v1/channels``: upstream accounts managed over HTTP; secrets go in, never come out."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Env

ADMIN = "admin-token-123"
SECRET = "a-very-secret-kling-secret-key"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"admin_token": ADMIN, "channel_probe_seconds": 0}


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN}"}


async def _add(env: Env, **body: Any) -> Any:
    payload = {
        "name": "sg",
        "base_url": "http://127.0.0.1:8001",
        "access_key": "sim-ak",
        "secret_key": SECRET,
    }
    payload.update(body)
    return await env.client.post("/admin/v1/channels", json=payload, headers=admin())


async def test_add_list_and_change_an_account(env: Env) -> None:
    res = await _add(env, priority=3, weight=2, models=["kling-v2-6"], caps={"*": 4})
    assert res.status_code == 200, res.text
    view = res.json()["data"]
    assert view["name"] == "sg" and view["priority"] == 3 and view["weight"] == 2
    assert view["models"] == ["kling-v2-6"] and view["caps"] == {"*": 4}
    assert view["keys"][0]["hint"] == "…ak"
    assert SECRET not in res.text

    res = await env.client.patch(
        "/admin/v1/channels/sg", json={"weight": 7, "enabled": False}, headers=admin()
    )
    assert res.status_code == 200 and res.json()["data"]["weight"] == 7
    assert res.json()["data"]["state"] == "disabled"

    listed = (await env.client.get("/admin/v1/channels", headers=admin())).json()["data"]
    assert [v["name"] for v in listed] == ["simulator", "sg"]
    assert all(SECRET not in str(v) and "sim-sk" not in str(v) for v in listed)
    for field in ("in_flight", "probe", "calls", "errors", "latency_ms", "state"):
        assert field in listed[0]


async def test_figures_count_calls_and_tasks_in_flight(env: Env) -> None:
    res = await env.create({"model_name": "kling-v2-6", "prompt": "fox"})
    assert res.status_code == 200
    (sim,) = (await env.client.get("/admin/v1/channels", headers=admin())).json()["data"]
    assert (
        sim["in_flight"] == 1
        and sim["calls"] >= 1
        and sim["errors"] == 0
        and sim["latency_ms"] >= 0
    )


async def test_keys_are_added_and_removed(env: Env) -> None:
    await _add(env)
    res = await env.client.post(
        "/admin/v1/channels/sg/keys", json={"api_key": "api-key-0123456789"}, headers=admin()
    )
    assert res.status_code == 200
    keys = res.json()["data"]["keys"]
    assert (
        len(keys) == 2 and "api-key-0123456789" not in res.text and keys[1]["hint"] == "api-…6789"
    )
    res = await env.client.delete(f"/admin/v1/channels/sg/keys/{keys[0]['id']}", headers=admin())
    assert [k["id"] for k in res.json()["data"]["keys"]] == [keys[1]["id"]]
    res = await env.client.delete(f"/admin/v1/channels/sg/keys/{keys[0]['id']}", headers=admin())
    assert (res.status_code == 404 and res.json()["code"] == 1203) or res.json()["code"] == 1202


async def test_probe_records_latency_or_error(env: Env) -> None:
    res = await env.client.post("/admin/v1/channels/simulator/probe", headers=admin())
    probe = res.json()["data"]["probe"]
    assert (
        res.status_code == 200
        and probe["error"] is None
        and probe["latency_ms"] >= 0
        and probe["at"]
    )
    await _add(env, secret_key="wrong-secret-key-for-sim-ak")
    res = await env.client.post("/admin/v1/channels/sg/probe", headers=admin())
    view = res.json()["data"]
    assert "1002" in view["probe"]["error"]
    assert view["state"].startswith("cooling down")  # refused credentials bench the account


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "bad name!"}, "name"),
        ({"name": None}, "name"),
        ({"base_url": "ftp://x"}, "base_url"),
        ({"access_key": None}, "credentials"),
        ({"secret_key": None}, "credentials"),
        ({"priority": "high"}, "priority"),
        ({"weight": -1}, "weight"),
        ({"weight": 10_001}, "weight"),
        ({"models": []}, "models"),
        ({"models": ["kling-v9"]}, "models"),
        ({"model_map": {"kling-v2-6": 5}}, "model_map"),
        ({"caps": {"*": 0}}, "caps"),
        ({"caps": {"kling-v9": 1}}, "caps"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_bad_input_names_the_field(env: Env, body: dict[str, Any], field: str) -> None:
    res = await _add(env, **body)
    assert res.status_code == 400, res.text
    assert res.json()["code"] == 1201 and field in res.json()["message"]


async def test_duplicate_name_and_unknown_account(env: Env) -> None:
    assert (await _add(env)).status_code == 200
    res = await _add(env)
    assert res.status_code == 400 and "exists already" in res.json()["message"]
    res = await env.client.patch("/admin/v1/channels/nope", json={"weight": 1}, headers=admin())
    assert res.status_code == 404


async def test_unreadable_body_and_no_token(env: Env) -> None:
    res = await env.client.post("/admin/v1/channels", content=b"{", headers=admin())
    assert res.status_code == 400 and res.json()["code"] == 1200
    res = await env.client.get("/admin/v1/channels")
    assert res.status_code == 401 and res.json()["code"] == 1001
