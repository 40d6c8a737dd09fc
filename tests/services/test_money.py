"""Every credit accounted for, exactly once: reserve at submit, settle or refund at the end."""

from __future__ import annotations

import asyncio

import pytest

from kling_gateway.domain.task import TaskStatus
from kling_gateway.services import admin, money
from kling_gateway.storage.money import MoneyStore
from kling_gateway.upstream.simulator import SimulatorConfig
from tests.conftest import Env, both_databases

V3 = {
    "model_name": "kling-v3",
    "prompt": "x",
    "duration": "5",
}  # 0.6 credits/s std silent → 3 credits


database_url = both_databases


async def _user(env: Env, name: str, credits: str) -> tuple[int, str]:
    user = await admin.create_user(env.gw, name)
    if credits != "0":
        await money.adjust(env.gw, user.id, credits, debit=False, note=None)
    issued = await admin.create_key(env.gw, name)
    assert issued.api_key is not None
    env.keys[name] = issued.api_key
    return user.id, issued.api_key


async def _balanced(env: Env, user_id: int) -> str:
    store = MoneyStore(env.gw.engine)
    balance = await store.balance(user_id)
    assert balance == await store.ledger_sum(user_id), "balance must equal the sum of the ledger"
    assert balance >= 0
    return str((await money.balance(env.gw, user_id))["balance"])


async def test_success_settles_the_price_and_shows_it(env: Env) -> None:
    uid, _ = await _user(env, "carol", "10")
    task_id = (await env.create(V3, user="carol")).json()["data"]["task_id"]
    assert await _balanced(env, uid) == "7"  # 3 reserved
    await env.run_until_idle(8)
    got = (await env.get(task_id, user="carol")).json()["data"]
    assert got["task_status"] == "succeed" and got["final_unit_deduction"] == "3"
    assert await _balanced(env, uid) == "7"
    entries = await MoneyStore(env.gw.engine).entries(uid)
    assert [(e.kind, e.reason, e.amount_micro) for e in entries] == [
        ("credit", "credit", 10_000_000),
        ("reserve", "reserve", -3_000_000),
        ("close", "settle", 0),
    ]


async def test_failure_refunds_everything(env: Env) -> None:
    env.sim.config.task_failure_rate = 1.0
    uid, _ = await _user(env, "carol", "10")
    task_id = (await env.create(V3, user="carol")).json()["data"]["task_id"]
    await env.run_until_idle(8)
    got = (await env.get(task_id, user="carol")).json()["data"]
    assert got["task_status"] == "failed" and got["final_unit_deduction"] == "0"
    assert await _balanced(env, uid) == "10"


async def test_upstream_refusal_at_submit_refunds(env: Env) -> None:
    env.sim.config.create_error_rate = 1.0
    env.sim.config.create_error_code = 1303
    uid, _ = await _user(env, "carol", "10")
    assert (await env.create(V3, user="carol")).status_code == 429
    assert await _balanced(env, uid) == "10"


async def test_not_enough_balance_is_1102_before_any_upstream_call(env: Env) -> None:
    uid, _ = await _user(env, "carol", "2.999999")
    resp = await env.create(V3, user="carol")
    assert resp.status_code == 429 and resp.json()["code"] == 1102
    assert "balance not enough" in resp.json()["message"]
    assert env.sim.tasks_created() == 0
    assert await env.gw.tasks.list_all(10, user_id=uid) == []
    assert await _balanced(env, uid) == "2.999999"


async def test_key_quota_caps_a_key(env: Env) -> None:
    uid, _ = await _user(env, "carol", "100")
    keys = await admin.list_keys(env.gw, "carol")
    await MoneyStore(env.gw.engine).set_quota(keys[0].id, 5_000_000)
    env.gw.auth.forget()
    assert (await env.create(V3, user="carol")).status_code == 200
    resp = await env.create(V3, user="carol")
    assert resp.status_code == 429 and "quota" in resp.json()["message"]
    assert await _balanced(env, uid) == "97"


async def test_unpriced_model_is_refused_before_upstream(env: Env) -> None:
    await _user(env, "carol", "100")
    await MoneyStore(env.gw.engine).replace_prices(
        [("kling-v1", "std", False, False, "0.2")], env.gw.now_ms()
    )
    await env.gw.refresh_catalog()
    resp = await env.create(V3, user="carol")
    assert (
        resp.status_code == 400
        and resp.json()["code"] == 1201
        and "no price" in resp.json()["message"]
    )
    assert env.sim.tasks_created() == 0


async def test_a_replayed_close_changes_nothing(env: Env) -> None:
    uid, _ = await _user(env, "carol", "10")
    task_id = (await env.create(V3, user="carol")).json()["data"]["task_id"]
    record = await env.gw.tasks.get(task_id)
    assert record is not None
    first = await env.gw.mover.move(
        record, TaskStatus.SUBMITTED, status="failed", next_poll_at=None
    )
    again = await env.gw.mover.move(
        record, TaskStatus.SUBMITTED, status="failed", next_poll_at=None
    )
    assert (first, again) == (True, False)
    assert await _balanced(env, uid) == "10"


@pytest.mark.parametrize("sim_config", [SimulatorConfig(concurrency_per_model=10_000, seed=5)])
async def test_200_parallel_submits_against_a_balance_for_150(env: Env) -> None:
    uid, _ = await _user(env, "carol", "450")  # 150 × 3 credits
    results = await asyncio.gather(*(env.create(V3, user="carol") for _ in range(200)))
    codes = [r.status_code for r in results]
    assert codes.count(200) == 150 and codes.count(429) == 50
    assert all(r.json()["code"] == 1102 for r in results if r.status_code == 429)
    assert await _balanced(env, uid) == "0"
    assert env.sim.tasks_created() == 150
    await env.run_until_idle(8)
    assert await _balanced(env, uid) == "0"  # all settled at the reserved price
