"""Limits as a client meets them: Kling's 1302/1303 codes, slots freed by finished tasks, and an
idempotent retry never refused by the limit its own task is using."""

from __future__ import annotations

import pytest

from tests.conftest import Env

BODY = {"model_name": "kling-v1", "prompt": "x"}


@pytest.mark.parametrize("settings_overrides", [{"key_max_in_flight": 1}])
async def test_in_flight_cap_per_key(env: Env) -> None:
    first = await env.create({**BODY, "external_task_id": "a"})
    assert first.status_code == 200
    second = await env.create({**BODY, "external_task_id": "b"})
    assert second.status_code == 429 and second.json()["code"] == 1303
    retry = await env.create({**BODY, "external_task_id": "a"})  # the same request again
    assert (
        retry.status_code == 200
        and retry.json()["data"]["task_id"] == first.json()["data"]["task_id"]
    )
    assert (
        await env.create(BODY, user="bob")
    ).status_code == 200  # another user's key is unaffected
    await env.run_until_idle(8)
    assert (await env.create({**BODY, "external_task_id": "b"})).status_code == 200
    assert env.sim.tasks_created() == 3


@pytest.mark.parametrize("settings_overrides", [{"key_rate_per_second": 1.0, "key_rate_burst": 2}])
async def test_rate_per_key(env: Env) -> None:
    codes = [(await env.create(BODY)).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    refused = await env.create(BODY)
    assert refused.json()["code"] == 1302
    env.clock.advance(1.1)
    assert (await env.create(BODY)).status_code == 200
