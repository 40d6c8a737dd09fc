"""Upstream failures: rejections reach the client as Kling codes; ambiguous outcomes are reconciled
by external_task_id so that no task is lost, orphaned or created upstream twice."""

from __future__ import annotations

import pytest

from kling_gateway.domain.task import TaskStatus
from kling_gateway.upstream.simulator import SimulatorConfig
from tests.conftest import TEXT2VIDEO, Env

BODY = {"model_name": "kling-v1", "prompt": "a lighthouse"}


async def _rows(env: Env) -> list[str]:
    return [t.status for t in await env.gw.tasks.list_all(100)]


async def _visible(env: Env) -> list[str]:
    data = (await env.client.get(TEXT2VIDEO, headers=env.auth())).json()["data"]
    return [t["task_id"] for t in data]


async def test_concurrency_limit_is_kling_1303_and_nothing_leaks(env: Env) -> None:
    env.sim.config.concurrency_per_model = 1
    first = await env.create({**BODY, "external_task_id": "a"})
    assert first.status_code == 200
    second = await env.create({**BODY, "external_task_id": "b"})
    assert second.status_code == 429
    assert second.json()["code"] == 1303
    assert second.json()["message"] == "parallel task over resource pack limit"
    assert await _visible(env) == [first.json()["data"]["task_id"]]
    assert sorted(await _rows(env)) == ["rejected", "submitted"]
    # once the slot frees, a retry with the same external_task_id works
    await env.run_until_idle(6)
    retry = await env.create({**BODY, "external_task_id": "b"})
    assert retry.status_code == 200, retry.text
    assert env.sim.tasks_created() == 2


@pytest.mark.parametrize(("code", "status"), [(5001, 503), (1302, 429), (1102, 503), (1004, 503)])
async def test_definite_rejections_map_to_kling_codes(env: Env, code: int, status: int) -> None:
    env.sim.config.create_error_rate = 1.0
    env.sim.config.create_error_code = code
    resp = await env.create(BODY)
    assert resp.status_code == status
    expected = code if code in (5001, 1302) else 5001  # operator-side trouble is not the client's
    assert resp.json()["code"] == expected
    assert env.sim.tasks_created() == 0
    assert await _visible(env) == []


async def test_ambiguous_5000_with_task_created_is_recovered_inline(env: Env) -> None:
    env.sim.config.ambiguous_error_rate = 1.0  # upstream creates the task, then answers 500/5000
    resp = await env.create(BODY)
    assert resp.status_code == 200, resp.text
    task_id = resp.json()["data"]["task_id"]
    assert env.sim.external_id_count(task_id) == 1
    record = await env.gw.tasks.get(task_id)
    assert record is not None and record.upstream_task_id is not None
    env.sim.config.ambiguous_error_rate = 0.0
    await env.run_until_idle(8)
    assert (await env.get(task_id)).json()["data"]["task_status"] == "succeed"
    assert env.sim.tasks_created() == 1


async def test_5000_without_task_is_resent_once_safely(env: Env) -> None:
    env.sim.config.create_error_rate = 1.0
    env.sim.config.create_error_code = 5000  # ambiguous to us, but nothing was made
    resp = await env.create(BODY)
    # both tries ambiguous and confirmed absent in between: the client still gets our id, not a 5xx
    assert resp.status_code == 200
    task_id = resp.json()["data"]["task_id"]
    env.sim.config.create_error_rate = 0.0
    await env.run_until_idle(10)
    assert (await env.get(task_id)).json()["data"]["task_status"] == "succeed"
    assert env.sim.external_id_count(task_id) == 1


@pytest.mark.parametrize("sim_config", [SimulatorConfig(hang_rate=1.0, hang_seconds=30, seed=3)])
async def test_timeout_after_send_is_looked_up_not_resubmitted(env: Env) -> None:
    resp = await env.create(BODY)
    assert resp.status_code == 200, resp.text
    task_id = resp.json()["data"]["task_id"]
    assert env.sim.external_id_count(task_id) == 1
    env.sim.config.hang_rate = 0.0
    await env.run_until_idle(8)
    assert (await env.get(task_id)).json()["data"]["task_status"] == "succeed"
    assert env.sim.tasks_created() == 1


async def test_unknown_outcome_is_accepted_then_reconciled_by_the_refresher(env: Env) -> None:
    env.sim.config.hang_rate = 1.0
    env.sim.config.hang_seconds = 30
    env.sim.config.get_error_rate = 1.0  # the lookup fails too: outcome unknown
    resp = await env.create(BODY)
    assert resp.status_code == 200
    task_id = resp.json()["data"]["task_id"]
    assert resp.json()["data"]["task_status"] == "submitted"
    record = await env.gw.tasks.get(task_id)
    assert (
        record is not None
        and record.status == TaskStatus.QUEUED
        and record.upstream_task_id is None
    )
    await env.run_until_idle(
        3
    )  # upstream still failing: the task waits, it is not failed or resent
    assert env.sim.external_id_count(task_id) == 1
    env.sim.config.hang_rate = 0.0
    env.sim.config.get_error_rate = 0.0
    await env.run_until_idle(10)
    assert (await env.get(task_id)).json()["data"]["task_status"] == "succeed"
    assert env.sim.tasks_created() == 1


async def test_reconcile_resubmits_when_upstream_confirms_absent(env: Env) -> None:
    env.sim.config.create_error_rate = 1.0
    env.sim.config.create_error_code = 5002
    env.sim.config.get_error_rate = 1.0
    resp = await env.create(BODY)
    task_id = resp.json()["data"]["task_id"]
    assert resp.status_code == 200 and env.sim.external_id_count(task_id) == 0
    env.sim.config.create_error_rate = 0.0
    env.sim.config.get_error_rate = 0.0
    await env.run_until_idle(10)
    assert (await env.get(task_id)).json()["data"]["task_status"] == "succeed"
    assert env.sim.external_id_count(task_id) == 1


async def test_accepted_task_refused_for_good_becomes_failed_not_hidden(env: Env) -> None:
    env.sim.config.create_error_rate = 1.0
    env.sim.config.create_error_code = 5002
    env.sim.config.get_error_rate = 1.0
    task_id = (await env.create(BODY)).json()["data"]["task_id"]
    env.sim.config.get_error_rate = 0.0
    env.sim.config.create_error_code = 1201  # now upstream refuses it outright
    await env.run_until_idle(10)
    got = (await env.get(task_id)).json()["data"]
    assert got["task_status"] == "failed" and "1201" in got["task_status_msg"]


async def test_query_errors_only_delay_tracking(env: Env) -> None:
    task_id = (await env.create(BODY)).json()["data"]["task_id"]
    env.sim.config.get_error_rate = 1.0
    await env.run_until_idle(8)
    assert (await env.get(task_id)).json()["data"]["task_status"] == "submitted"
    env.sim.config.get_error_rate = 0.0
    await env.run_until_idle(8)
    assert (await env.get(task_id)).json()["data"]["task_status"] == "succeed"


async def test_status_never_moves_backwards(env: Env) -> None:
    from kling_gateway.upstream.client import UpstreamTask

    task_id = (await env.create(BODY)).json()["data"]["task_id"]
    await env.run_until_idle(8)
    record = await env.gw.tasks.get(task_id)
    assert record is not None and record.status == "succeed"
    stale = UpstreamTask(record.upstream_task_id or "", "processing", "", None, 0, 0)
    assert await env.gw.refresher.apply(record, stale) is False
    assert (await env.get(task_id)).json()["data"]["task_status"] == "succeed"


async def test_retry_after_a_crash_between_upstream_create_and_cas_gets_the_same_task(
    env: Env,
) -> None:
    """A node killed after upstream created the task, but before the row learned its upstream id,
    leaves a queued row whose public id upstream already holds. The client's idempotent retry (same
    body, same external_task_id) on another node must attach that task: upstream refuses a second
    create with that external id (1201), and taking the refusal at its word would hide the row,
    refund it and answer 400 while the upstream task runs on, unbilled and untracked (found by
    tests/multinode)."""
    body = {**BODY, "external_task_id": "crash-1"}
    task_id = (await env.create(body)).json()["data"]["task_id"]
    # what the dead node left behind
    assert await env.gw.tasks.transition(
        task_id, TaskStatus.SUBMITTED, status=TaskStatus.QUEUED.value, upstream_task_id=None
    )
    retry = await env.create(body)
    assert retry.status_code == 200, retry.text
    assert retry.json()["data"]["task_id"] == task_id
    record = await env.gw.tasks.get(task_id)
    assert record is not None and record.status == TaskStatus.SUBMITTED and record.upstream_task_id
    assert env.sim.tasks_created() == 1
    await env.run_until_idle(8)
    assert (await env.get("crash-1")).json()["data"]["task_status"] == "succeed"


async def test_refresher_resubmit_racing_an_earlier_create_attaches_it(env: Env) -> None:
    """The refresher's twin of the case above: its lookup found nothing, then the dying request's
    create landed upstream before the refresher's own; the refused resubmit must attach, not fail
    the task."""
    task_id = (await env.create(BODY)).json()["data"]["task_id"]
    assert await env.gw.tasks.transition(
        task_id, TaskStatus.SUBMITTED, status=TaskStatus.QUEUED.value, upstream_task_id=None
    )
    record = await env.gw.tasks.get(task_id)
    assert record is not None
    moved = await env.gw.submitter.resubmit(record)
    assert moved.status == TaskStatus.SUBMITTED and moved.upstream_task_id is not None
    assert env.sim.tasks_created() == 1
