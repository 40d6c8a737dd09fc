"""Users see their money: quotes, balance, usage, and Kling's own /account/costs."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import jwt
import pytest

from kling_gateway.http.app import create_app
from kling_gateway.services import admin, money
from kling_gateway.upstream.simulator import ManualClock, SimulatorConfig, create_simulator_app
from tests.conftest import TEXT2VIDEO, Env, make_settings, settled

V3 = {"model_name": "kling-v3", "prompt": "x", "duration": 10, "mode": "pro", "sound": "on"}


async def test_quote_prices_without_creating(env: Env) -> None:
    resp = await env.client.post(f"{TEXT2VIDEO}/quote", json=V3, headers=env.auth())
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    assert (
        data["price"] == "12" and data["credits_per_second"] == "1.2" and data["duration"] == "10"
    )
    assert data["billing"] == "on" and "message" not in data
    assert env.sim.tasks_created() == 0 and await env.gw.tasks.list_all(5) == []
    bad = await env.client.post(
        f"{TEXT2VIDEO}/quote", json={**V3, "duration": "99"}, headers=env.auth()
    )
    assert (
        bad.status_code == 400
        and bad.json()["code"] == 1201
        and "duration" in bad.json()["message"]
    )
    root = await env.client.post("/v1/videos/text2video/quote", json=V3, headers=env.auth())
    assert root.json()["data"]["price"] == "12"


async def test_balance_and_usage(env: Env) -> None:
    before = (await env.client.get("/kling/v1/account/balance", headers=env.auth())).json()["data"]
    assert before == {"balance": "1000000", "currency": "credits"}
    await env.create(V3)
    await env.create(
        {**V3, "model_name": "kling-v1", "mode": "std", "sound": "off", "duration": "5"}
    )
    await env.run_until_idle(8)
    after = (await env.client.get("/kling/v1/account/balance", headers=env.auth())).json()["data"]
    assert after["balance"] == "999987"  # 12 + 1
    usage = (await env.client.get("/kling/v1/account/usage", headers=env.auth())).json()["data"]
    assert usage["total"] == "13"
    assert sorted((i["model_name"], i["credits"], i["tasks"]) for i in usage["items"]) == [
        ("kling-v1", "1", 1),
        ("kling-v3", "12", 1),
    ]
    bad = await env.client.get("/kling/v1/account/usage?start_time=yesterday", headers=env.auth())
    assert bad.status_code == 400 and "start_time" in bad.json()["message"]


@pytest.mark.parametrize(
    "path", ["/account/costs", "/kling/account/costs", "/kling/v1/account/costs"]
)
async def test_account_costs_in_klings_shape_with_a_kling_jwt(env: Env, path: str) -> None:
    issued = await admin.create_key(env.gw, "alice", aksk=True)
    assert issued.secret_key
    now = int(time.time())
    token = jwt.encode(
        {"iss": issued.access_key, "exp": now + 600, "nbf": now - 5}, issued.secret_key, "HS256"
    )
    params = {"start_time": 0, "end_time": (now + 3600) * 1000}
    resp = await env.client.get(path, params=params, headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    assert data["code"] == 0
    (pack,) = data["resource_pack_subscribe_infos"]
    assert pack["remaining_quantity"] == 1_000_000 and pack["status"] == "online"
    missing = await env.client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert missing.status_code == 400 and missing.json()["code"] == 1201


async def test_a_mapped_alias_is_priced_as_its_target_in_quote_reserve_and_settle(env: Env) -> None:
    await admin.map_model(env.gw, "my-fast", "kling-v2-5-turbo")
    body = {"model_name": "my-fast", "prompt": "x", "duration": "10", "mode": "pro"}
    resp = await env.client.post(f"{TEXT2VIDEO}/quote", json=body, headers=env.auth())
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    assert data["credits_per_second"] == "0.5" and data["price"] == "5"  # the target's pro: 0.5/s
    created = await env.create(body)
    assert created.status_code == 200, created.text
    task_id = created.json()["data"]["task_id"]
    await env.run_until_idle(8)
    record = await env.gw.tasks.get(task_id)
    assert record is not None and record.status == "succeed" and record.public_model == "my-fast"
    assert record.reserved_micro == 5_000_000 and record.charged_micro == 5_000_000
    balance = (await env.client.get("/kling/v1/account/balance", headers=env.auth())).json()["data"]
    assert balance["balance"] == "999995"

    store = money.money_store(env.gw)
    rows = await store.price_rows()
    await store.replace_prices([*rows, ("my-fast", "*", False, False, "2")], env.gw.now_ms())
    await env.gw.refresh_catalog()
    own = await env.client.post(f"{TEXT2VIDEO}/quote", json=body, headers=env.auth())
    assert own.json()["data"]["price"] == "20"  # priced itself: its own price wins


async def test_with_billing_off_the_quote_says_so(
    tmp_path: Path, clock: ManualClock, sim_config: SimulatorConfig
) -> None:
    settings = make_settings(tmp_path, billing=False)
    sim_app = create_simulator_app(sim_config, clock=clock)
    upstream = httpx.ASGITransport(sim_app)
    app = create_app(settings, transport=upstream, clock=clock, run_poller=False)
    async with sim_app.router.lifespan_context(sim_app), app.router.lifespan_context(app):
        gw = app.state.gateway
        await admin.create_user(gw, "carol")
        issued = await admin.create_key(gw, "carol")
        headers = {"Authorization": f"Bearer {issued.api_key}"}
        async with httpx.AsyncClient(transport=settled(app), base_url="http://gw") as client:
            resp = await client.post(f"{TEXT2VIDEO}/quote", json=V3, headers=headers)
            assert resp.status_code == 200, resp.text
            data = resp.json()["data"]
            assert data["billing"] == "off" and data["price"] == "0"
            assert "billing is off" in data["message"] and "KGW_BILLING=false" in data["message"]
            assert "no price" not in resp.text
            bad_body = {**V3, "duration": "99"}
            bad = await client.post(f"{TEXT2VIDEO}/quote", json=bad_body, headers=headers)
            assert bad.status_code == 400 and "duration" in bad.json()["message"]
