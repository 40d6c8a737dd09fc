"""The per-key token bucket in Redis (KGW_REDIS_URL): same behaviour as the database bucket, shared
by processes, tidy (keys expire once full), and a Redis outage falls back to the database bucket.

Needs a Redis at KGW_TEST_REDIS_URL (default redis://127.0.0.1:6379/15, a database kept for tests);
the tests that need it skip loudly when it is unreachable."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import func, select

from kling_gateway.errors import RateLimited
from kling_gateway.services import limits as limits_module
from kling_gateway.services.limits import REDIS_PREFIX, Limiter, LimitSettings
from kling_gateway.storage.limits import rate_buckets
from tests.conftest import Env
from tests.services.test_limits import MODEL, RATE_STEPS, account, admit, principal, second_key
from tests.storage.test_limits_store import BUCKET_STEPS

REDIS_URL = os.environ.get("KGW_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
UNREACHABLE = "redis://127.0.0.1:1/0"


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=1.0, socket_timeout=1.0)
    try:
        try:
            await client.ping()
        except Exception as exc:
            pytest.skip(f"Redis not reachable at {REDIS_URL} ({exc}); set KGW_TEST_REDIS_URL")
        stale = [k async for k in client.scan_iter(match=f"{REDIS_PREFIX}*")]
        if stale:
            await client.delete(*stale)
        yield REDIS_URL
    finally:
        await client.aclose()


async def db_buckets(env: Env) -> int:
    async with env.gw.engine.connect() as conn:
        return int(
            (await conn.execute(select(func.count()).select_from(rate_buckets))).scalar() or 0
        )


async def test_redis_bucket_allows_the_burst_then_refills_with_time(
    env: Env, redis_url: str
) -> None:
    lim = Limiter(
        env.gw.engine,
        env.gw.clock,
        LimitSettings(key_rate_per_second=1.0, key_rate_burst=3, redis_url=redis_url),
    )
    p = await principal(env)
    try:
        for advance, n, expected in RATE_STEPS:
            env.clock.advance(advance)
            got = [await admit(lim, p, account(env), MODEL) for _ in range(n)]
            assert [e is None for e in got] == expected, (advance, got)
            assert all(isinstance(e, RateLimited) for e in got if e is not None)
    finally:
        await lim.aclose()
    assert await db_buckets(env) == 0  # Redis held the state, not the database


async def test_redis_bucket_handles_clocks_like_the_database_bucket(
    env: Env, redis_url: str
) -> None:
    lim = Limiter(
        env.gw.engine,
        env.gw.clock,
        LimitSettings(key_rate_per_second=2.0, key_rate_burst=3, redis_url=redis_url),
    )
    p = await principal(env)
    base = env.clock.now
    got = []
    try:
        for at_ms, _expected in BUCKET_STEPS:
            env.clock.now = base + at_ms / 1000
            got.append(await admit(lim, p, account(env), MODEL) is None)
    finally:
        await lim.aclose()
    assert got == [expected for _at, expected in BUCKET_STEPS]


async def test_redis_bucket_is_per_key_shared_by_processes_and_expires(
    env: Env, redis_url: str
) -> None:
    settings = LimitSettings(key_rate_per_second=0.5, key_rate_burst=2, redis_url=redis_url)
    limiters = [
        Limiter(env.gw.engine, env.gw.clock, settings),
        Limiter(env.gw.engine, env.gw.clock, settings),
    ]  # two clients, like two processes
    p = await principal(env)
    try:
        got = [await admit(limiters[i % 2], p, account(env), MODEL) is None for i in range(4)]
        other = await principal(env, api_key=await second_key(env))
        assert await admit(limiters[0], other, account(env), MODEL) is None
    finally:
        for lim in limiters:
            await lim.aclose()
    assert got == [True, True, False, False]
    client = Redis.from_url(redis_url)
    try:
        ttl_ms = await client.pttl(f"{REDIS_PREFIX}{p.key.id}")
    finally:
        await client.aclose()
    assert 0 < ttl_ms <= 2 * 2000 + 1000  # gone once it would be full again: idle keys cost nothing


async def test_unreachable_redis_falls_back_to_the_database_bucket(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    lim = Limiter(
        env.gw.engine,
        env.gw.clock,
        LimitSettings(key_rate_per_second=0.01, key_rate_burst=2, redis_url=UNREACHABLE),
    )
    p = await principal(env)
    try:
        with caplog.at_level(logging.WARNING, logger="kling_gateway.limits"):
            got = [await admit(lim, p, account(env), MODEL) for _ in range(3)]
    finally:
        await lim.aclose()
    assert [e is None for e in got] == [True, True, False]
    assert isinstance(got[2], RateLimited)
    assert await db_buckets(env) == 1
    warnings = [r for r in caplog.records if "Redis unavailable" in r.getMessage()]
    assert len(warnings) == 1  # tried once, then left alone for a while: not once per request


async def test_a_failing_redis_is_retried_only_after_a_pause(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    lim = Limiter(
        env.gw.engine,
        env.gw.clock,
        LimitSettings(key_rate_per_second=1.0, key_rate_burst=50, redis_url=UNREACHABLE),
    )
    calls: list[object] = []

    async def failing(**kwargs: object) -> int:
        calls.append(kwargs)
        raise RedisConnectionError("down")

    bucket = lim._bucket
    assert bucket is not None
    monkeypatch.setattr(bucket, "_script", failing)
    now = [1000.0]
    monkeypatch.setattr(limits_module, "monotonic", lambda: now[0])
    p = await principal(env)
    try:
        for _ in range(5):
            assert await admit(lim, p, account(env), MODEL) is None
        assert len(calls) == 1
        now[0] += 5.1
        assert await admit(lim, p, account(env), MODEL) is None
        assert len(calls) == 2
    finally:
        await lim.aclose()
