"""Status changes record their webhook events atomically: one per (task, status), none when lost
races."""

from __future__ import annotations

import orjson
from sqlalchemy import select

from kling_gateway.domain.task import TaskStatus
from kling_gateway.storage.tables import webhook_deliveries
from tests.conftest import Env, both_databases

HOOK = "https://hooks.example.com/kling"


database_url = both_databases


async def _events(env: Env) -> list[dict[str, object]]:
    async with env.gw.engine.connect() as conn:
        rows = (
            await conn.execute(select(webhook_deliveries).order_by(webhook_deliveries.c.created_at))
        ).all()
    return [dict(r._mapping) for r in rows]


async def test_each_status_change_records_one_event_with_the_task_object(env: Env) -> None:
    resp = await env.create(
        {"model_name": "kling-v1", "prompt": "x", "callback_url": HOOK, "external_task_id": "e"}
    )
    task_id = resp.json()["data"]["task_id"]
    await env.run_until_idle(8)
    events = await _events(env)
    assert [e["task_status"] for e in events] == ["submitted", "processing", "succeed"]
    for event in events:
        assert event["url"] == HOOK and event["status"] == "pending" and event["task_id"] == task_id
        body = orjson.loads(str(event["payload"]))
        assert body["task_id"] == task_id  # our id, never upstream's
        assert body["task_info"] == {"external_task_id": "e"}
        assert body["task_status"] == event["task_status"]
    final = orjson.loads(str(events[-1]["payload"]))
    assert final["task_result"]["videos"][0]["url"].endswith(".mp4")
    assert len({e["id"] for e in events}) == 3


async def test_no_callback_url_no_events(env: Env) -> None:
    await env.create({"model_name": "kling-v1", "prompt": "x"})
    await env.run_until_idle(8)
    assert await _events(env) == []


async def test_a_lost_race_records_nothing_and_a_replay_is_ignored(env: Env) -> None:
    resp = await env.create({"model_name": "kling-v1", "prompt": "x", "callback_url": HOOK})
    record = await env.gw.tasks.get(resp.json()["data"]["task_id"])
    assert record is not None and record.status == "submitted"
    assert await env.gw.mover.move(record, TaskStatus.SUBMITTED, status="processing") is True
    # a second writer that read the same old state loses the CAS and must not record an event
    assert await env.gw.mover.move(record, TaskStatus.SUBMITTED, status="processing") is False
    assert [e["task_status"] for e in await _events(env)] == ["submitted", "processing"]
