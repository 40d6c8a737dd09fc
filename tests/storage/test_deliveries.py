"""DeliveryStore and WebhookSecrets against a real schema, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kling_gateway.domain.task import TaskStatus
from kling_gateway.storage.accounts import AccountStore
from kling_gateway.storage.deliveries import (
    DELIVERED,
    FAILED,
    PENDING,
    Delivery,
    DeliveryStore,
    Outcome,
    UserNotFound,
    WebhookSecrets,
)
from kling_gateway.storage.tables import webhook_deliveries
from kling_gateway.storage.tasks import TaskRecord
from tests.storage.conftest import task_store

T0 = 1_770_000_000_000
LEASE = 70_000


@pytest.fixture
async def user_id(engine: AsyncEngine) -> int:
    return (await AccountStore(engine).create_user("alice", T0)).id


@pytest.fixture
def store(engine: AsyncEngine) -> DeliveryStore:
    return DeliveryStore(engine)


async def add_task(engine: AsyncEngine, user_id: int, task_id: str) -> None:
    record = TaskRecord(
        id=task_id,
        user_id=user_id,
        key_id=None,
        public_model="kling-v1",
        upstream_model="kling-v1",
        status=TaskStatus.SUBMITTED.value,
        status_msg="",
        external_task_id=None,
        request_hash="0" * 64,
        request_json="{}",
        callback_url="https://hooks.example.com/x",
        mode="std",
        duration=5,
        sound=False,
        watermark=False,
        upstream_account_id=None,
        upstream_task_id=None,
        result_json=None,
        unit_deduction=None,
        created_at=T0,
        updated_at=T0,
        next_poll_at=None,
        poll_attempts=0,
    )
    async with task_store(engine) as tasks:
        await tasks.insert(record)


async def add_event(
    engine: AsyncEngine,
    user_id: int,
    task_id: str,
    status: str,
    *,
    due: int = T0,
    created: int = T0,
) -> str:
    event_id = f"msg_{task_id}_{status}"
    async with engine.begin() as conn:
        await conn.execute(
            webhook_deliveries.insert().values(
                id=event_id,
                task_id=task_id,
                user_id=user_id,
                task_status=status,
                url="https://hooks.example.com/x",
                payload=f'{{"task_id":"{task_id}"}}',
                status=PENDING,
                attempts=0,
                next_attempt_at=due,
                created_at=created,
                updated_at=created,
            )
        )
    return event_id


def failed_try(
    at: int, retry_at: int | None, status: str = PENDING, code: int | None = 500
) -> Outcome:
    return Outcome(at, 12, code, f"HTTP {code}" if code else "refused", status, retry_at)


def success(at: int) -> Outcome:
    return Outcome(at, 7, 204, None, DELIVERED, None)


async def test_claim_takes_due_rows_oldest_first_and_leases_them(
    engine: AsyncEngine, store: DeliveryStore, user_id: int
) -> None:
    await add_task(engine, user_id, "t1")
    later = await add_event(engine, user_id, "t1", "processing", due=T0 + 10)
    first = await add_event(engine, user_id, "t1", "submitted", due=T0 + 5)
    last = await add_event(engine, user_id, "t1", "succeed", due=T0 + 1000)  # not due yet

    claimed = await store.claim(T0 + 100, LEASE, 10)
    assert [d.id for d in claimed] == [first, later]
    assert {d.lease_until for d in claimed} == {T0 + 100 + LEASE}
    assert await store.claim(T0 + 200, LEASE, 10) == []  # leased
    expired = await store.claim(
        T0 + 100 + LEASE + 1, LEASE, 10
    )  # the lease ran out: claimable again
    assert [d.id for d in expired] == [first, later, last]


async def test_claim_respects_the_limit(
    engine: AsyncEngine, store: DeliveryStore, user_id: int
) -> None:
    await add_task(engine, user_id, "t1")
    for status in ("submitted", "processing", "succeed"):
        await add_event(engine, user_id, "t1", status)
    assert len(await store.claim(T0, LEASE, 2)) == 2
    assert len(await store.claim(T0, LEASE, 2)) == 1


async def test_concurrent_claims_split_the_rows(
    engine: AsyncEngine, store: DeliveryStore, user_id: int
) -> None:
    ids = set()
    for n in range(6):
        await add_task(engine, user_id, f"t{n}")
        for status in ("submitted", "processing", "succeed"):
            ids.add(await add_event(engine, user_id, f"t{n}", status))
    other = DeliveryStore(engine)
    batches = await asyncio.gather(
        *(s.claim(T0, LEASE, 5) for s in (store, other, store, other, store))
    )
    taken = [d.id for batch in batches for d in batch]
    assert len(taken) == len(set(taken))  # no row went to two claimers
    assert set(taken) <= ids
    rest = await store.claim(T0, LEASE, 100)
    assert set(taken) | {d.id for d in rest} == ids


async def test_record_failure_reschedules_and_logs(
    engine: AsyncEngine, store: DeliveryStore, user_id: int
) -> None:
    await add_task(engine, user_id, "t1")
    event = await add_event(engine, user_id, "t1", "submitted")
    (d,) = await store.claim(T0, LEASE, 10)
    assert await store.record(d, failed_try(T0 + 1, T0 + 5000))
    got = await store.get(event)
    assert got is not None
    assert (got.status, got.attempts, got.next_attempt_at, got.lease_until) == (
        PENDING,
        1,
        T0 + 5000,
        None,
    )
    assert (got.last_status_code, got.last_error, got.updated_at) == (500, "HTTP 500", T0 + 1)
    assert await store.claim(T0 + 4999, LEASE, 10) == []
    (d,) = await store.claim(T0 + 5000, LEASE, 10)
    assert await store.record(d, success(T0 + 5001))
    got = await store.get(event)
    assert got is not None
    assert (got.status, got.attempts, got.next_attempt_at, got.delivered_at) == (
        DELIVERED,
        2,
        None,
        T0 + 5001,
    )
    assert (got.last_status_code, got.last_error) == (204, None)
    attempts = await store.attempts(event)
    assert [(a.attempted_at, a.status_code, a.error, a.latency_ms) for a in attempts] == [
        (T0 + 1, 500, "HTTP 500", 12),
        (T0 + 5001, 204, None, 7),
    ]
    assert await store.claim(T0 + 10**9, LEASE, 10) == []


async def test_record_giving_up(engine: AsyncEngine, store: DeliveryStore, user_id: int) -> None:
    await add_task(engine, user_id, "t1")
    event = await add_event(engine, user_id, "t1", "submitted")
    (d,) = await store.claim(T0, LEASE, 10)
    assert await store.record(d, failed_try(T0, None, status=FAILED, code=None))
    got = await store.get(event)
    assert got is not None
    assert (got.status, got.next_attempt_at, got.last_status_code, got.last_error) == (
        FAILED,
        None,
        None,
        "refused",
    )
    assert await store.claim(T0 + 10**9, LEASE, 10) == []


async def test_a_stale_holder_cannot_reschedule_but_its_success_counts(
    engine: AsyncEngine, store: DeliveryStore, user_id: int
) -> None:
    await add_task(engine, user_id, "t1")
    event = await add_event(engine, user_id, "t1", "submitted")
    (stale,) = await store.claim(T0, LEASE, 10)
    (fresh,) = await store.claim(
        T0 + LEASE + 1, LEASE, 10
    )  # the first lease ran out; another took it
    assert not await store.record(stale, failed_try(T0 + LEASE + 2, T0 + 10**9))
    got = await store.get(event)
    assert got is not None and got.lease_until == fresh.lease_until and got.next_attempt_at == T0
    assert len(await store.attempts(event)) == 1  # the attempt happened: it is logged all the same
    assert await store.record(stale, success(T0 + LEASE + 3))
    assert not await store.record(fresh, success(T0 + LEASE + 4))  # already delivered
    got = await store.get(event)
    assert got is not None and got.status == DELIVERED and got.delivered_at == T0 + LEASE + 3


async def test_redeliver_requeues_any_state(
    engine: AsyncEngine, store: DeliveryStore, user_id: int
) -> None:
    await add_task(engine, user_id, "t1")
    event = await add_event(engine, user_id, "t1", "submitted")
    (d,) = await store.claim(T0, LEASE, 10)
    await store.record(d, success(T0 + 1))
    assert await store.redeliver(event, T0 + 50)
    got = await store.get(event)
    assert got is not None
    assert (got.status, got.next_attempt_at, got.lease_until, got.attempts) == (
        PENDING,
        T0 + 50,
        None,
        1,
    )
    assert [x.id for x in await store.claim(T0 + 50, LEASE, 10)] == [event]
    assert not await store.redeliver("msg_nope", T0)
    assert await store.get("msg_nope") is None


async def test_redeliver_fences_off_a_send_in_flight(
    engine: AsyncEngine, store: DeliveryStore, user_id: int
) -> None:
    await add_task(engine, user_id, "t1")
    event = await add_event(engine, user_id, "t1", "submitted")
    (d,) = await store.claim(T0, LEASE, 10)
    await store.redeliver(event, T0 + 1)
    assert not await store.record(d, failed_try(T0 + 2, T0 + 10**9))
    got = await store.get(event)
    assert got is not None and got.next_attempt_at == T0 + 1


async def test_log_per_task(engine: AsyncEngine, store: DeliveryStore, user_id: int) -> None:
    await add_task(engine, user_id, "t1")
    await add_task(engine, user_id, "t2")
    a = await add_event(engine, user_id, "t1", "submitted", created=T0)
    b = await add_event(engine, user_id, "t1", "succeed", created=T0 + 9)
    other = await add_event(engine, user_id, "t2", "submitted")
    claimed: dict[str, Delivery] = {d.id: d for d in await store.claim(T0, LEASE, 10)}
    await store.record(claimed[a], failed_try(T0 + 1, T0 + 2))
    await store.record(claimed[other], success(T0 + 1))
    (again,) = await store.claim(T0 + 2, LEASE, 10)
    await store.record(again, success(T0 + 3))

    assert [d.id for d in await store.for_task("t1")] == [a, b]
    log = await store.attempts_for_task("t1")
    assert set(log) == {a}
    assert [x.status_code for x in log[a]] == [500, 204]
    assert await store.for_task("nope") == [] and await store.attempts_for_task("nope") == {}


async def test_webhook_secrets(engine: AsyncEngine, user_id: int) -> None:
    secrets = WebhookSecrets(engine)
    assert await secrets.get(user_id) is None
    assert await secrets.set(user_id, "enc-1", only_if_absent=True)
    assert not await secrets.set(user_id, "enc-2", only_if_absent=True)
    assert await secrets.get(user_id) == "enc-1"
    assert await secrets.set(user_id, "enc-3")
    assert await secrets.get(user_id) == "enc-3"
    with pytest.raises(UserNotFound):
        await secrets.get(user_id + 100)
    assert not await secrets.set(user_id + 100, "x")
