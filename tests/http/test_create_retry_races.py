"""A client's idempotent retry of a create whose first attempt already reached upstream.

Found by the soak (bench/soak.py): the retry of a row left ``queued`` (its request cut off by a
crash, or still waiting on a slow upstream) sent the create again, upstream refused the duplicate
``external_task_id`` with 1201, and the gateway took that as "nothing was made": it rejected and
refunded the row and answered 400 — while the first upstream task ran on, unbilled and invisible,
and the client's next retry made a second one.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from kling_gateway.domain.task import TaskStatus
from kling_gateway.storage.money import MoneyStore
from kling_gateway.upstream.simulator import SimulatorConfig
from tests.conftest import TEXT2VIDEO, Env

BODY: dict[str, Any] = {
    "model_name": "kling-v1",
    "prompt": "a lighthouse",
    "external_task_id": "mine-1",
}


async def _money_is_exact(env: Env) -> None:
    store = MoneyStore(env.gw.engine)
    principal = await env.gw.auth.authenticate(env.auth()["Authorization"])
    entries = await store.entries(principal.user_id)
    closes = [e for e in entries if e.kind == "close"]
    assert len(closes) == 1 and closes[0].reason == "settle"
    assert await store.balance(principal.user_id) == await store.ledger_sum(principal.user_id)


async def test_retry_after_a_crash_mid_create_adopts_the_upstream_task(env: Env) -> None:
    gw = env.gw
    principal = await gw.auth.authenticate(env.auth()["Authorization"])
    req = gw.creation.validate(principal, BODY)
    upstream = gw.primary()
    # what the crashed process did: the row (with its reserve), the upstream create, not the CAS
    record, fresh = await gw.creation._insert(principal, req, upstream)
    assert fresh
    await upstream.create(orjson.loads(record.request_json), record.id)

    resp = await env.create(BODY)  # the client's retry after its connection dropped

    assert resp.status_code == 200, resp.text
    assert resp.json()["data"]["task_id"] == record.id
    row = await gw.tasks.get(record.id)
    assert (
        row is not None and row.status == TaskStatus.SUBMITTED and row.upstream_task_id is not None
    )
    assert env.sim.external_id_count(record.id) == 1 and env.sim.tasks_created() == 1
    await env.run_until_idle(8)
    assert (await env.get("mine-1")).json()["data"]["task_status"] == "succeed"
    await _money_is_exact(env)


@pytest.mark.parametrize("sim_config", [SimulatorConfig(hang_rate=1.0, hang_seconds=30, seed=3)])
async def test_retry_while_the_first_create_waits_on_upstream(env: Env) -> None:
    first = asyncio.create_task(
        env.create(BODY)
    )  # upstream makes the task, then hangs past the timeout
    for _ in range(200):  # until upstream holds the task (bounded: the hang alone is 30 s)
        if env.sim.tasks_created():
            break
        await asyncio.sleep(0.01)
    retry = await env.create(BODY)  # the client gave up waiting and sent the same create again
    done = await first

    assert retry.status_code == 200, retry.text
    assert done.status_code == 200, done.text
    assert retry.json()["data"]["task_id"] == done.json()["data"]["task_id"]
    assert env.sim.tasks_created() == 1
    env.sim.config.hang_rate = 0.0
    await env.run_until_idle(8)
    assert (await env.get("mine-1")).json()["data"]["task_status"] == "succeed"
    await _money_is_exact(env)


async def test_a_real_1201_refusal_still_rejects_the_row(env: Env) -> None:
    env.sim.config.create_error_rate = 1.0
    env.sim.config.create_error_code = 1201  # nothing under our id upstream: the lookup says so
    resp = await env.create(BODY)
    assert resp.status_code == 400 and resp.json()["code"] == 1201
    assert env.sim.tasks_created() == 0
    assert [t.status for t in await env.gw.tasks.list_all(10)] == [TaskStatus.REJECTED]
    listed = (await env.client.get(TEXT2VIDEO, headers=env.auth())).json()["data"]
    assert listed == []
