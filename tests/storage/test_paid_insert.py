"""A task insert with its reserve, on SQLite (steps, group-committed) and on PostgreSQL (one
statement): the same answers for every refusal, nothing half-written, and on PostgreSQL one round
trip."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kling_gateway.domain.task import TaskStatus
from kling_gateway.storage.accounts import AccountStore
from kling_gateway.storage.deliveries import DeliveryStore
from kling_gateway.storage.hotpath import HotPath
from kling_gateway.storage.money import MoneyStatements, MoneyStore, Reserve
from kling_gateway.storage.tasks import DuplicateExternalId, Refused, TaskStore
from kling_gateway.storage.upstreams import UpstreamStore
from tests.storage.test_tasks_store import T0, make_task


async def _funded(
    engine: AsyncEngine, tasks: TaskStore, balance: int, quota: int | None
) -> tuple[int, int]:
    accounts = AccountStore(engine)
    user = await accounts.create_user("alice", T0)
    key = await accounts.add_key(user_id=user.id, name="k", kind="sk", prefix="sk-1", now_ms=T0)
    hot = await HotPath.open(engine)
    try:
        money = MoneyStatements(hot)
        assert await money.adjust(
            user_id=user.id, amount=balance, reason="credit", note=None, now_ms=T0
        )
    finally:
        await hot.close()
    await MoneyStore(engine).set_quota(key, quota)
    return user.id, key


def _reserve(user_id: int, key_id: int | None, amount: int) -> Reserve:
    return Reserve(
        user_id=user_id, key_id=key_id, amount=amount, public_model="kling-v2-6", now_ms=T0
    )


async def _books(engine: AsyncEngine, user_id: int) -> tuple[int, int, int]:
    """(balance, sum of the ledger, ledger rows)."""
    store = MoneyStore(engine)
    return (
        await store.balance(user_id),
        await store.ledger_sum(user_id),
        len(await store.entries(user_id)),
    )


@pytest.mark.parametrize(
    ("balance", "quota", "refused"),
    [
        (40, None, 0),  # the balance cannot pay
        (100, 40, 1),  # the key's quota cannot
        (40, 40, 0),  # neither: the balance is named first, as before
    ],
)
async def test_a_refused_reserve_writes_nothing(
    engine: AsyncEngine, tasks: TaskStore, balance: int, quota: int | None, refused: int
) -> None:
    user_id, key = await _funded(engine, tasks, balance, quota)
    record = make_task(user_id, key_id=key, status=TaskStatus.QUEUED.value, reserved_micro=50)
    with pytest.raises(Refused) as info:
        await tasks.insert(record, reserve=_reserve(user_id, key, 50))
    assert info.value.index == refused
    assert await tasks.get(record.id) is None
    assert await _books(engine, user_id) == (balance, balance, 1)


async def test_a_paid_insert_debits_once_and_books_the_reserve(
    engine: AsyncEngine, tasks: TaskStore
) -> None:
    user_id, key = await _funded(engine, tasks, 100, 80)
    first = make_task(user_id, key_id=key, external_task_id="mine", reserved_micro=30)
    await tasks.insert(first, reserve=_reserve(user_id, key, 30))
    assert await tasks.get(first.id) == first
    assert await _books(engine, user_id) == (70, 70, 2)
    # the same external id again: refused as a duplicate, and its debit undone with it
    again = make_task(user_id, key_id=key, external_task_id="mine", reserved_micro=30)
    with pytest.raises(DuplicateExternalId):
        await tasks.insert(again, reserve=_reserve(user_id, key, 30))
    assert await _books(engine, user_id) == (70, 70, 2)
    # the key's quota counted only the first: 30 more reach 60 of 80, 30 after that do not
    await tasks.insert(make_task(user_id, key_id=key), reserve=_reserve(user_id, key, 30))
    with pytest.raises(Refused) as info:
        await tasks.insert(make_task(user_id, key_id=key), reserve=_reserve(user_id, key, 30))
    assert info.value.index == 1


async def test_a_reserve_without_a_key_debits_the_user(
    engine: AsyncEngine, tasks: TaskStore
) -> None:
    user_id, _ = await _funded(engine, tasks, 100, None)
    await tasks.insert(make_task(user_id), reserve=_reserve(user_id, None, 60))
    with pytest.raises(Refused) as info:
        await tasks.insert(make_task(user_id), reserve=_reserve(user_id, None, 60))
    assert info.value.index == 0
    assert await _books(engine, user_id) == (40, 40, 2)


async def test_repoint_moves_only_a_queued_unsubmitted_row_from_its_account(
    engine: AsyncEngine, tasks: TaskStore
) -> None:
    user = await AccountStore(engine).create_user("bob", T0)
    upstreams = UpstreamStore(engine)
    one, two, three = [
        await upstreams.create_account(name=n, base_url=f"http://{n}", now_ms=T0)
        for n in ("one", "two", "three")
    ]
    queued = make_task(user.id, status=TaskStatus.QUEUED.value)
    await tasks.insert(queued)
    assert await tasks.repoint(queued.id, None, one)  # on no account yet
    assert not await tasks.repoint(queued.id, None, two)  # no longer on "none"
    assert not await tasks.repoint(queued.id, three, two)  # nor on three
    assert await tasks.repoint(queued.id, one, two)
    got = await tasks.get(queued.id)
    assert got is not None and got.upstream_account_id == two
    submitted = make_task(
        user.id, upstream_account_id=one
    )  # submitted: stays where upstream has it
    await tasks.insert(submitted)
    assert not await tasks.repoint(submitted.id, one, two)


async def test_on_postgres_a_create_is_two_round_trips(engine: AsyncEngine) -> None:
    """The reserve and insert in one statement, the compare-and-set to submitted (with its webhook
    event when there is a callback_url) in one more. It was seven, ten with a callback_url: BEGIN,
    debit user, debit key, insert, ledger, COMMIT, then the compare-and-set (BEGIN, CAS, event,
    COMMIT)."""
    if engine.dialect.name != "postgresql":
        pytest.skip(
            "the one-statement reserve is PostgreSQL's; SQLite's writes share a group commit"
        )
    sent: list[str] = []
    hot = await HotPath.open(engine, on_query=lambda q: sent.append(q.query))
    try:
        tasks = TaskStore(engine, hot)
        user_id, key = await _funded(engine, tasks, 1000, None)

        async def create() -> None:
            record = make_task(
                user_id, key_id=key, status=TaskStatus.QUEUED.value, reserved_micro=10
            )
            await tasks.insert(record, reserve=_reserve(user_id, key, 10))
            submitted: dict[str, Any] = {"status": "submitted", "upstream_task_id": "u"}
            assert await tasks.transition(record.id, TaskStatus.QUEUED, **submitted)
            # with a callback_url the change is announced in the same statement
            other = make_task(
                user_id, key_id=key, status=TaskStatus.QUEUED.value, reserved_micro=10
            )
            await tasks.insert(other, reserve=_reserve(user_id, key, 10))
            event = _event(other.id, user_id)
            assert await tasks.transition(other.id, TaskStatus.QUEUED, event=event, **submitted)
            assert not await tasks.transition(other.id, TaskStatus.QUEUED, event=event, **submitted)

        await create()  # the first one also prepares the statements on its connection
        await asyncio.sleep(0)  # query loggers are called soon after, not inline
        sent.clear()
        await create()
        await asyncio.sleep(0)
    finally:
        await hot.close()
    assert len(sent) == 5, sent  # two creates (one with a callback_url), one replay refused


def _event(task_id: str, user_id: int) -> dict[str, Any]:
    return {
        "id": f"msg_{task_id}",
        "task_id": task_id,
        "user_id": user_id,
        "task_status": "submitted",
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


async def test_a_change_is_announced_once_and_only_when_it_happened(
    engine: AsyncEngine, tasks: TaskStore
) -> None:
    user = await AccountStore(engine).create_user("carol", T0)
    record = make_task(user.id, status=TaskStatus.QUEUED.value)
    await tasks.insert(record)
    event = _event(record.id, user.id)
    assert not await tasks.transition(
        record.id, TaskStatus.SUBMITTED, event=event, status="processing"
    )
    assert await DeliveryStore(engine).for_task(record.id) == []  # no change, no event
    assert await tasks.transition(record.id, TaskStatus.QUEUED, event=event, status="submitted")
    again = {**event, "id": "msg_other"}  # another writer's event for the same status: ignored
    assert await tasks.transition(record.id, TaskStatus.SUBMITTED, event=again, status="submitted")
    assert [d.id for d in await DeliveryStore(engine).for_task(record.id)] == [event["id"]]
