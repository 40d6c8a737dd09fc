"""Creates and closes of one user's tasks, all at once: no deadlock, and the books add up.

A create locks the user row first and inserts its task after. A retried create (the same
``external_task_id``) waits, holding that lock, for whoever is changing the task it duplicates,
because the unique index must know whether that row survives. A close used to change the task
first and reach the user row after (its ledger row's foreign key, then the credit): the two orders
met and PostgreSQL aborted one side with a deadlock (40P01), which the client saw as a 500.

A deadlock the hot path runs again (retry.py) is not seen by the caller, so the test also asks the
server how many it detected: none.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kling_gateway.domain.task import TaskStatus
from kling_gateway.storage.accounts import AccountStore
from kling_gateway.storage.hotpath import HotPath
from kling_gateway.storage.money import Close, MoneyStatements, MoneyStore, Reserve
from kling_gateway.storage.tasks import DuplicateExternalId, TaskRecord, TaskStore
from tests.storage.test_tasks_store import T0, make_task

FUNDS, PRICE, CHARGED = 10_000_000, 100, 60
EACH = 50  # per round: closes (half refunded), announced changes, new and retried creates
ROUNDS = 3


def _reserve(record: TaskRecord) -> Reserve:
    return Reserve(
        user_id=record.user_id,
        key_id=record.key_id,
        amount=PRICE,
        public_model=record.public_model,
        now_ms=T0,
    )


def _close(record: TaskRecord, charged: int) -> Close:
    return Close(
        user_id=record.user_id,
        key_id=record.key_id,
        task_id=record.id,
        back=PRICE - charged,
        charged=charged,
        reason="settle" if charged else "refund",
        public_model=record.public_model,
        now_ms=T0,
    )


async def _create(tasks: TaskStore, record: TaskRecord) -> None:
    await tasks.insert(record, reserve=_reserve(record))


async def _retry(tasks: TaskStore, of: TaskRecord) -> None:
    """A client sending the create of ``of`` again: refused as a duplicate, nothing written."""
    again = make_task(of.user_id, key_id=of.key_id, external_task_id=of.external_task_id)
    try:
        await _create(tasks, again)
    except DuplicateExternalId:
        return
    raise AssertionError(f"a second task under {of.external_task_id!r}")


async def _settle(tasks: TaskStore, record: TaskRecord, charged: int) -> None:
    new = TaskStatus.SUCCEED if charged else TaskStatus.FAILED
    close = _close(record, charged)
    values: dict[str, Any] = {"status": new.value, "charged_micro": charged}
    assert await tasks.transition(record.id, TaskStatus.SUBMITTED, close=close, **values)


async def _announce(tasks: TaskStore, record: TaskRecord) -> None:
    """A change with a webhook event: the event row's foreign key share-locks the user row."""
    event = _event(record)
    assert await tasks.transition(record.id, TaskStatus.SUBMITTED, event=event, status="processing")


def _event(record: TaskRecord) -> dict[str, Any]:
    return {
        "id": f"msg_{record.id}",
        "task_id": record.id,
        "user_id": record.user_id,
        "task_status": "processing",
        "url": "https://hooks.example.com/x",
        "payload": "{}",
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": T0,
        "lease_until": None,
        "last_status_code": None,
        "last_error": None,
        "created_at": T0,
        "updated_at": T0,
        "delivered_at": None,
    }


async def _round(tasks: TaskStore, user_id: int, key_id: int, n: int) -> None:
    opened = [
        make_task(user_id, key_id=key_id, external_task_id=f"r{n}-{i}", reserved_micro=PRICE)
        for i in range(2 * EACH)
    ]
    for record in opened:
        await _create(tasks, record)
    work = []
    for i, record in enumerate(opened[:EACH]):
        work.append(_settle(tasks, record, CHARGED if i % 2 else 0))
        work.append(_retry(tasks, record))
        work.append(_create(tasks, make_task(user_id, key_id=key_id, reserved_micro=PRICE)))
    for record in opened[EACH:]:
        work.append(_announce(tasks, record))
        work.append(_retry(tasks, record))
    await asyncio.gather(*work)


async def _deadlocks(engine: AsyncEngine) -> int:
    """The deadlocks PostgreSQL detected in this database. A session's counts reach
    ``pg_stat_database`` by the time it has ended, so first every other session is ended."""
    await engine.dispose()
    others = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
    )
    async with engine.connect() as conn:
        for _ in range(200):
            if not (await conn.execute(others)).scalar():
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("sessions of this database still open after 10 s")
        await conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        found = await conn.execute(
            text("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        )
        return int(found.scalar() or 0)


async def test_creates_and_closes_of_one_user_at_once(engine: AsyncEngine) -> None:
    postgres = engine.dialect.name == "postgresql"
    deadlocks = await _deadlocks(engine) if postgres else 0
    accounts = AccountStore(engine)
    user = await accounts.create_user("busy", T0)
    key = await accounts.add_key(user_id=user.id, name="k", kind="sk", prefix="sk-b", now_ms=T0)
    hot = await HotPath.open(engine, pool_size=20)
    try:
        assert await MoneyStatements(hot).adjust(
            user_id=user.id, amount=FUNDS, reason="credit", note=None, now_ms=T0
        )
        tasks = TaskStore(engine, hot)
        for n in range(ROUNDS):
            await _round(tasks, user.id, key, n)
    finally:
        await hot.close()
    if postgres:
        assert await _deadlocks(engine) == deadlocks
    store = MoneyStore(engine)
    # per round: 3 × EACH reserves (the announced tasks' too); half the closes give back
    # PRICE - CHARGED, half all of PRICE
    back = EACH // 2 * (PRICE - CHARGED) + EACH // 2 * PRICE
    expected = FUNDS - ROUNDS * (3 * EACH * PRICE - back)
    assert await store.balance(user.id) == expected
    assert await store.ledger_sum(user.id) == expected
    assert len(await store.entries(user.id)) == 1 + ROUNDS * 4 * EACH
