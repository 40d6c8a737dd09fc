"""LimitStore on a real schema, SQLite and PostgreSQL: the token bucket's SQL arithmetic (refill,
cap, clamps, atomicity across engines) and the partial indexes behind the in-flight counts."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from kling_gateway.storage.accounts import AccountStore
from kling_gateway.storage.db import make_engine
from kling_gateway.storage.limits import NANO, LimitStore, rate_buckets

T0 = 1_770_000_000_000


@pytest.fixture
async def key_ids(engine: AsyncEngine) -> list[int]:
    accounts = AccountStore(engine)
    user = await accounts.create_user("alice", T0)
    return [
        await accounts.add_key(
            user_id=user.id, name=f"k{i}", kind="sk", prefix="sk-x", now_ms=T0, key_hash=f"h{i}"
        )
        for i in range(2)
    ]


def _store(engine: AsyncEngine) -> LimitStore:
    return LimitStore(engine, user=True, key=True, upstream=True)


# (ms since T0, expected) for rate 2/s (one token per 500 ms), burst 3.
HOUR = 3_600_000
BUCKET_STEPS = [
    (0, True),  # a missing row is a full bucket: 3 → 2
    (0, True),  # 1
    (0, True),  # 0
    (0, False),  # empty
    (499, False),  # 0.998 of a token is not a token
    (500, True),  # one token refilled and taken
    (500, False),
    (-60_000, False),  # a clock a minute behind refills nothing
    (1000, True),  # 500 ms of refill since the last take: one token
    (HOUR, True),  # an hour idle refills to the burst, not beyond: 3 → 2
    (
        HOUR - 60_000,
        True,
    ),  # a process a minute behind takes what is there (2 → 1), drains nothing …
    (HOUR, True),  # … and did not move updated_at back (no extra minute of refill): 1 → 0
    (HOUR, False),
]


async def test_bucket_refills_with_time_up_to_the_burst(
    engine: AsyncEngine, key_ids: list[int]
) -> None:
    store = _store(engine)
    got = [
        await store.take_token(key_ids[0], T0 + at, rate_per_second=2.0, burst=3)
        for at, _expected in BUCKET_STEPS
    ]
    assert got == [expected for _at, expected in BUCKET_STEPS]


async def test_bucket_is_per_key(engine: AsyncEngine, key_ids: list[int]) -> None:
    store = _store(engine)
    assert await store.take_token(key_ids[0], T0, rate_per_second=1.0, burst=1)
    assert not await store.take_token(key_ids[0], T0, rate_per_second=1.0, burst=1)
    assert await store.take_token(key_ids[1], T0, rate_per_second=1.0, burst=1)


@pytest.mark.parametrize(
    ("rate", "burst", "idle_ms", "expect_tokens"),
    [
        (
            0.001,
            5,
            1000,
            3.001,
        ),  # 5 → 4, + 1/1000 of a token after 1 s, → 3.001: slow rates stay exact
        (
            1000.0,
            2_000_000,
            10**12,
            1_999_999,
        ),  # 31 years idle at a high rate: capped, no BIGINT overflow
        (0.5, 2, 3000, 1),  # 1.5 tokens of refill on 1 remaining, capped at 2, one taken
    ],
)
async def test_bucket_arithmetic_is_exact_and_cannot_overflow(
    engine: AsyncEngine,
    key_ids: list[int],
    rate: float,
    burst: int,
    idle_ms: int,
    expect_tokens: float,
) -> None:
    store = _store(engine)
    assert await store.take_token(key_ids[0], T0, rate_per_second=rate, burst=burst)
    assert await store.take_token(key_ids[0], T0 + idle_ms, rate_per_second=rate, burst=burst)
    async with engine.connect() as conn:
        tokens, updated = (
            await conn.execute(select(rate_buckets.c.tokens_nano, rate_buckets.c.updated_at))
        ).one()
    assert tokens == round(expect_tokens * NANO)
    assert updated == T0 + idle_ms


async def test_bucket_is_atomic_across_engines(engine: AsyncEngine, key_ids: list[int]) -> None:
    """Two engines (two gateway processes) racing on one key's bucket take exactly ``burst``
    tokens."""
    other = make_engine(engine.url.render_as_string(hide_password=False))
    try:
        stores = [_store(engine), _store(other)]
        results = await asyncio.gather(
            *(
                stores[i % 2].take_token(key_ids[0], T0, rate_per_second=0.001, burst=7)
                for i in range(20)
            )
        )
    finally:
        await other.dispose()
    assert sum(results) == 7


async def test_counts_read_only_in_flight_rows_of_each_scope(
    engine: AsyncEngine, key_ids: list[int]
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO upstream_accounts (name, base_url, enabled, created_at) "
                "VALUES ('a', 'x', true, 1)"
            )
        )
        user_id = (
            await conn.execute(
                text("SELECT user_id FROM api_keys WHERE id = :k"), {"k": key_ids[0]}
            )
        ).scalar()
        account_id = (await conn.execute(text("SELECT id FROM upstream_accounts"))).scalar()
    assert user_id is not None and account_id is not None
    store = _store(engine)
    assert await store.in_flight(user_id, key_ids[0], account_id, "m") == (0, 0, 0)
    assert await store.upstream_in_flight(account_id, "m") == 0
    assert await LimitStore(engine, user=False, key=False, upstream=False).in_flight(
        1, 1, 1, "m"
    ) == (
        0,
        0,
        0,
    )


@pytest.mark.parametrize(
    ("scopes", "index"),
    [
        ((True, False, False), "ix_tasks_active_user_id"),
        ((False, True, False), "ix_tasks_active_key_id"),
        ((False, False, True), "ix_tasks_active_upstream"),
    ],
)
async def test_counts_use_the_partial_indexes(
    engine: AsyncEngine, scopes: tuple[bool, bool, bool], index: str
) -> None:
    """The status filter must be spelled like the index predicate or the planner cannot use the
    index."""
    user, key, upstream = scopes
    store = LimitStore(engine, user=user, key=key, upstream=upstream)
    assert store._counts is not None
    compiled = store._counts.compile(dialect=engine.dialect)
    values = {"user_id": 1, "key_id": 1, "account_id": 1, "model": "m"}
    args = tuple(values[name] for name in compiled.positiontup or ())
    explain = "EXPLAIN " if engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN "
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(
                text("SET enable_seqscan = off")
            )  # an empty table would be scanned anyway
        rows = (await conn.exec_driver_sql(explain + str(compiled), args)).all()
    plan = "\n".join(str(r[-1]) for r in rows)
    # Counted from the index alone: no table row is read per task in flight.
    covering = (
        "Index Only Scan using" if engine.dialect.name == "postgresql" else "USING COVERING INDEX"
    )
    assert f"{covering} {index}" in plan, plan
