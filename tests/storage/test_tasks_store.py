"""TaskStore against a real schema, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kling_gateway.domain.ids import IdMinter
from kling_gateway.domain.task import TaskStatus
from kling_gateway.services.gateway import build_gateway
from kling_gateway.storage.accounts import AccountStore
from kling_gateway.storage.tasks import DuplicateExternalId, DuplicateTaskId, TaskRecord, TaskStore
from tests.conftest import make_settings
from tests.storage.conftest import task_store

T0 = 1_770_000_000_000  # a fixed "now" in ms


@pytest.fixture
async def users(engine: AsyncEngine) -> tuple[int, int]:
    accounts = AccountStore(engine)
    alice = await accounts.create_user("alice", T0)
    bob = await accounts.create_user("bob", T0)
    return alice.id, bob.id


@pytest.fixture(params=["store", "gateway"])
async def store(
    request: pytest.FixtureRequest, engine: AsyncEngine, tmp_path: Path
) -> AsyncIterator[TaskStore]:
    """A bare TaskStore, and the one build_gateway wires up."""
    if request.param == "store":
        async with task_store(engine) as tasks:
            yield tasks
        return
    url = engine.url.render_as_string(hide_password=False)
    gw = await build_gateway(make_settings(tmp_path, url))
    try:
        yield gw.tasks
    finally:
        await gw.aclose()


_minter = IdMinter()


def make_task(user_id: int, *, at: int = T0, **overrides: Any) -> TaskRecord:
    values: dict[str, Any] = {
        "id": _minter.mint(at),
        "user_id": user_id,
        "key_id": None,
        "public_model": "kling-v2-6",
        "upstream_model": "kling-v2-6",
        "status": TaskStatus.SUBMITTED.value,
        "status_msg": "",
        "external_task_id": None,
        "request_hash": "h" * 64,
        "request_json": '{"prompt":"a fox"}',
        "callback_url": None,
        "mode": "std",
        "duration": 5,
        "sound": False,
        "watermark": False,
        "upstream_account_id": None,
        "upstream_task_id": None,
        "result_json": None,
        "unit_deduction": None,
        "created_at": at,
        "updated_at": at,
        "next_poll_at": at + 1000,
        "poll_attempts": 0,
    }
    values.update(overrides)
    return TaskRecord(**values)


async def test_insert_then_get_round_trips_every_field(
    store: TaskStore, users: tuple[int, int]
) -> None:
    alice, _ = users
    record = make_task(
        alice,
        external_task_id="ext-1",
        callback_url="https://cb.example/x",
        sound=True,
        watermark=True,
        result_json='{"videos":[]}',
        unit_deduction="1.5",
        upstream_task_id="up-1",
        poll_attempts=3,
    )
    await store.insert(record)
    got = await store.get(record.id)
    assert got == record
    assert got is not None and got.task_status is TaskStatus.SUBMITTED
    assert await store.get("999999999999999999") is None


async def test_same_external_id_same_user_is_duplicate(
    store: TaskStore, users: tuple[int, int]
) -> None:
    alice, _ = users
    first = make_task(alice, external_task_id="dup")
    await store.insert(first)
    with pytest.raises(DuplicateExternalId):
        await store.insert(make_task(alice, external_task_id="dup"))
    assert [t.id for t in await store.list_for_user(alice, 0, 10)] == [first.id]


async def test_same_external_id_across_users_is_fine(
    store: TaskStore, users: tuple[int, int]
) -> None:
    alice, bob = users
    await store.insert(make_task(alice, external_task_id="shared"))
    await store.insert(make_task(bob, external_task_id="shared"))
    a = await store.by_external_id(alice, "shared")
    b = await store.by_external_id(bob, "shared")
    assert a is not None and b is not None and a.id != b.id
    assert (a.user_id, b.user_id) == (alice, bob)


async def test_many_null_external_ids_allowed(store: TaskStore, users: tuple[int, int]) -> None:
    alice, _ = users
    for _ in range(3):
        await store.insert(make_task(alice, external_task_id=None))
    assert len(await store.list_for_user(alice, 0, 10)) == 3


async def test_same_task_id_is_duplicate_task_id(store: TaskStore, users: tuple[int, int]) -> None:
    alice, bob = users
    record = make_task(alice, external_task_id="one")
    await store.insert(record)
    with pytest.raises(DuplicateTaskId):
        await store.insert(dataclasses.replace(record, user_id=bob, external_task_id="two"))
    with pytest.raises(DuplicateTaskId):
        await store.insert(dataclasses.replace(record, external_task_id=None))
    got = await store.get(record.id)
    assert got is not None and got.user_id == alice and got.external_task_id == "one"


async def test_find_for_user_by_id_and_external_id(
    store: TaskStore, users: tuple[int, int]
) -> None:
    alice, bob = users
    record = make_task(alice, external_task_id="mine")
    await store.insert(record)
    assert (await store.find_for_user(alice, record.id)) == record
    assert (await store.find_for_user(alice, "mine")) == record
    assert await store.find_for_user(bob, record.id) is None
    assert await store.find_for_user(bob, "mine") is None
    assert await store.find_for_user(alice, "nope") is None


async def test_find_for_user_prefers_public_id_over_external_id(
    store: TaskStore, users: tuple[int, int]
) -> None:
    alice, _ = users
    target = make_task(alice)
    # another task of the same user whose external id equals the first task's public id
    await store.insert(make_task(alice, external_task_id=target.id))
    await store.insert(target)
    got = await store.find_for_user(alice, target.id)
    assert got is not None and got.id == target.id


async def test_rejected_rows_are_invisible_to_the_user(
    store: TaskStore, users: tuple[int, int]
) -> None:
    alice, _ = users
    rejected = make_task(
        alice, status=TaskStatus.REJECTED.value, external_task_id="gone", next_poll_at=None
    )
    visible = make_task(alice)
    await store.insert(rejected)
    await store.insert(visible)
    assert await store.find_for_user(alice, rejected.id) is None
    assert await store.find_for_user(alice, "gone") is None
    assert [t.id for t in await store.list_for_user(alice, 0, 10)] == [visible.id]
    # ...but the operator still sees them
    assert (await store.get(rejected.id)) == rejected
    assert {t.id for t in await store.list_all(10)} == {rejected.id, visible.id}


async def test_list_for_user_newest_first_and_paged(
    store: TaskStore, users: tuple[int, int]
) -> None:
    alice, bob = users
    ids = []
    for i in range(5):
        record = make_task(alice, at=T0 + i * 10)
        ids.append(record.id)
    for record_id in reversed(ids):  # insertion order must not matter
        record = make_task(alice, id=record_id)
        await store.insert(record)
    await store.insert(make_task(bob, at=T0 + 1000))
    newest_first = ids[::-1]
    assert [t.id for t in await store.list_for_user(alice, 0, 10)] == newest_first
    assert [t.id for t in await store.list_for_user(alice, 0, 2)] == newest_first[:2]
    assert [t.id for t in await store.list_for_user(alice, 2, 2)] == newest_first[2:4]
    assert [t.id for t in await store.list_for_user(alice, 4, 2)] == newest_first[4:]
    assert await store.list_for_user(alice, 10, 2) == []


async def test_list_all_filters(store: TaskStore, users: tuple[int, int]) -> None:
    alice, bob = users
    a1 = make_task(alice, at=T0)
    a2 = make_task(alice, at=T0 + 5, status=TaskStatus.SUCCEED.value, next_poll_at=None)
    b1 = make_task(bob, at=T0 + 10)
    for r in (a1, a2, b1):
        await store.insert(r)
    assert [t.id for t in await store.list_all(10)] == [b1.id, a2.id, a1.id]
    assert [t.id for t in await store.list_all(1)] == [b1.id]
    assert [t.id for t in await store.list_all(10, status="succeed")] == [a2.id]
    assert [t.id for t in await store.list_all(10, user_id=alice)] == [a2.id, a1.id]
    assert [t.id for t in await store.list_all(10, status="submitted", user_id=alice)] == [a1.id]


async def test_transition_is_compare_and_set(store: TaskStore, users: tuple[int, int]) -> None:
    alice, _ = users
    record = make_task(alice)
    await store.insert(record)
    moved = await store.transition(
        record.id, TaskStatus.PROCESSING, status=TaskStatus.SUCCEED.value, updated_at=T0 + 99
    )
    assert moved is False
    assert (await store.get(record.id)) == record

    assert await store.transition(
        record.id, TaskStatus.SUBMITTED, status=TaskStatus.PROCESSING.value, updated_at=T0 + 5
    )
    got = await store.get(record.id)
    assert got is not None and got.status == "processing" and got.updated_at == T0 + 5
    # once moved, the old expectation no longer matches
    assert not await store.transition(
        record.id, TaskStatus.SUBMITTED, status=TaskStatus.FAILED.value
    )
    assert not await store.transition("999999999999999999", TaskStatus.SUBMITTED, status="failed")
    got = await store.get(record.id)
    assert got is not None and got.status == "processing"


async def test_concurrent_transitions_exactly_one_wins(
    store: TaskStore, users: tuple[int, int]
) -> None:
    alice, _ = users
    record = make_task(alice)
    await store.insert(record)
    results = await asyncio.gather(
        store.transition(record.id, TaskStatus.SUBMITTED, status="succeed", status_msg="a"),
        store.transition(record.id, TaskStatus.SUBMITTED, status="failed", status_msg="b"),
        store.transition(record.id, TaskStatus.SUBMITTED, status="processing", status_msg="c"),
    )
    assert sorted(results) == [False, False, True]
    winner = ["succeed", "failed", "processing"][results.index(True)]
    got = await store.get(record.id)
    assert got is not None and got.status == winner
    assert got.status_msg == "abc"[results.index(True)]


async def test_reschedule_is_compare_and_set(store: TaskStore, users: tuple[int, int]) -> None:
    alice, _ = users
    record = make_task(alice)
    await store.insert(record)
    assert not await store.reschedule(record.id, TaskStatus.PROCESSING, T0 + 50_000, 7)
    assert await store.reschedule(record.id, TaskStatus.SUBMITTED, T0 + 50_000, 7)
    got = await store.get(record.id)
    assert got is not None and (got.next_poll_at, got.poll_attempts, got.status) == (
        T0 + 50_000,
        7,
        "submitted",
    )


async def test_due_returns_only_active_and_due_tasks_in_order(
    store: TaskStore, users: tuple[int, int]
) -> None:
    alice, bob = users
    now = T0 + 10_000
    late = make_task(alice, status="processing", next_poll_at=now - 1)
    earliest = make_task(bob, status="queued", next_poll_at=now - 5000)
    exactly_now = make_task(alice, status="submitted", next_poll_at=now)
    future = make_task(alice, status="submitted", next_poll_at=now + 1)
    no_poll = make_task(alice, status="submitted", next_poll_at=None)
    terminal = [
        make_task(alice, status=s, next_poll_at=now - 9000)
        for s in ("succeed", "failed", "rejected")
    ]
    for r in (late, earliest, exactly_now, future, no_poll, *terminal):
        await store.insert(r)
    due = await store.due(now, 100)
    assert [t.id for t in due] == [earliest.id, late.id, exactly_now.id]
    assert [t.id for t in await store.due(now, 2)] == [earliest.id, late.id]
    assert await store.due(T0 - 10_000, 100) == []


async def test_in_flight_per_account_counts_from_the_partial_index(
    engine: AsyncEngine, tasks: TaskStore, users: tuple[int, int]
) -> None:
    """The operator's per-account figure counts only unfinished tasks, and on SQLite reads the
    covering partial index (with a bound ``status IN (?, ?, ?)`` it walked every task an account
    ever had)."""
    from kling_gateway.storage.upstreams import IN_FLIGHT, UpstreamStore

    upstreams = UpstreamStore(engine)
    one = await upstreams.create_account(name="one", base_url="http://one", now_ms=T0)
    two = await upstreams.create_account(name="two", base_url="http://two", now_ms=T0)
    statuses = {
        one: ["queued", "submitted", "processing", "succeed", "failed"],
        two: ["rejected", "processing"],
    }
    for account, names in statuses.items():
        for name in names:
            await tasks.insert(make_task(users[0], status=name, upstream_account_id=account))
    await tasks.insert(make_task(users[0], status="queued"))  # no account yet: not counted
    assert await upstreams.in_flight() == {one: 3, two: 1}
    if engine.dialect.name == "sqlite":
        sql = str(IN_FLIGHT.compile(dialect=engine.dialect))
        async with engine.connect() as conn:
            plan = (await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)).all()
        assert "COVERING INDEX ix_tasks_active_upstream" in str(plan), plan
