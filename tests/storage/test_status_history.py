"""A task's status history on SQLite and PostgreSQL: the INSERT writes the first entry, each
compare-and-set that changes the status appends one in the same UPDATE (alone, with its webhook
event, or with its reserve's close), and a write that changes no status, or whose compare-and-set
matched nothing, appends nothing."""

from __future__ import annotations

import orjson
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from kling_gateway.domain.task import TaskStatus
from kling_gateway.storage.accounts import AccountStore
from kling_gateway.storage.tables import tasks as tasks_table
from kling_gateway.storage.tasks import TaskStore
from tests.storage.test_paid_insert import _event
from tests.storage.test_tasks_store import T0, make_task


async def _history(store: TaskStore, task_id: str) -> list[tuple[str, int | None, str]]:
    found = await store.get(task_id)
    assert found is not None and found.status_history is not None
    return [(e["status"], e["at"], e["by"]) for e in orjson.loads(found.status_history)]


async def test_entries_are_appended_by_the_status_writes_only(
    engine: AsyncEngine, tasks: TaskStore
) -> None:
    user = await AccountStore(engine).create_user("hana", T0)
    record = make_task(user.id, status=TaskStatus.QUEUED.value)
    await tasks.insert(record)
    assert await _history(tasks, record.id) == [("queued", T0, "create")]

    event = _event(record.id, user.id)
    moved = await tasks.transition(
        record.id,
        TaskStatus.QUEUED,
        event=event,
        by="submit",
        status="submitted",
        updated_at=T0 + 5,
    )
    assert moved
    assert not await tasks.transition(
        record.id, TaskStatus.QUEUED, by="poll", status="failed", updated_at=T0 + 6
    )  # the compare-and-set matched nothing: no entry either
    assert await tasks.reschedule(record.id, TaskStatus.SUBMITTED, T0 + 9, 1)  # no status change
    assert await tasks.transition(
        record.id, TaskStatus.SUBMITTED, by="poll", status="processing", updated_at=T0 + 10
    )
    assert await tasks.transition(
        record.id, TaskStatus.PROCESSING, by="callback", status="succeed", updated_at=T0 + 20
    )
    assert await _history(tasks, record.id) == [
        ("queued", T0, "create"),
        ("submitted", T0 + 5, "submit"),
        ("processing", T0 + 10, "poll"),
        ("succeed", T0 + 20, "callback"),
    ]


async def test_a_row_from_before_the_history_starts_one(
    engine: AsyncEngine, tasks: TaskStore
) -> None:
    user = await AccountStore(engine).create_user("ivo", T0)
    record = make_task(user.id)
    await tasks.insert(record)
    async with engine.begin() as conn:  # as migration 0011 leaves an older row
        await conn.execute(update(tasks_table).values(status_history=None))
    assert await tasks.transition(
        record.id, TaskStatus.SUBMITTED, by="timeout", status="failed", updated_at=T0 + 1
    )
    assert await _history(tasks, record.id) == [("failed", T0 + 1, "timeout")]
