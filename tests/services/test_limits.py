"""Limiter (DB-backed) against the real gateway, on SQLite and PostgreSQL: in-flight caps per user,
per key and per (upstream account, model), the bounded wait for an upstream slot, and the per-key
token bucket.

Until ``admit`` is wired into create, each test calls it itself right before ``env.create``."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import event, func, select, update

from kling_gateway.errors import ConcurrencyLimited, ConfigError, KlingError, RateLimited
from kling_gateway.services import admin
from kling_gateway.services.auth import Principal
from kling_gateway.services.limits import Limiter, LimitSettings
from kling_gateway.storage.db import make_engine
from kling_gateway.storage.tables import tasks
from tests.conftest import Env, both_databases, make_settings

MODEL = "kling-v2-6"


database_url = both_databases


async def principal(env: Env, user: str = "alice", api_key: str | None = None) -> Principal:
    return await env.gw.auth.authenticate(f"Bearer {api_key or env.keys[user]}")


async def second_key(env: Env, user: str = "alice") -> str:
    issued = await admin.create_key(env.gw, user, name="second")
    assert issued.api_key is not None
    return issued.api_key


def account(env: Env) -> int:
    return env.gw.primary().account_id


async def create(
    env: Env, user: str = "alice", api_key: str | None = None, model: str = MODEL
) -> str:
    headers = {"Authorization": f"Bearer {api_key or env.keys[user]}"}
    resp = await env.client.post(
        "/kling/v1/videos/text2video", json={"model_name": model, "prompt": "x"}, headers=headers
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["data"]["task_id"])


async def upstream_model(env: Env, task_id: str) -> str:
    record = await env.gw.tasks.get(task_id)
    assert record is not None
    return record.upstream_model


async def set_status(env: Env, task_id: str, status: str) -> None:
    async with env.gw.engine.begin() as conn:
        await conn.execute(update(tasks).where(tasks.c.id == task_id).values(status=status))


async def admit(lim: Limiter, p: Principal, acc: int, model: str) -> KlingError | None:
    try:
        await lim.admit(p, acc, model)
    except KlingError as exc:
        return exc
    return None


# --- settings
# ------------------------------------------------------------------------------------------


def test_settings_default_to_no_limits_before_the_settings_exist(tmp_path: Path) -> None:
    assert LimitSettings.from_settings(make_settings(tmp_path)) == LimitSettings()


def test_settings_are_read_by_name_and_unwrap_secrets() -> None:
    values: dict[str, Any] = {
        "user_max_in_flight": 5,
        "key_max_in_flight": 2,
        "key_rate_per_second": 0.5,
        "key_rate_burst": 3,
        "upstream_model_concurrency": 4,
        "upstream_queue_wait_seconds": 1.5,
        "redis_url": SecretStr("redis://:pw@h:6379/0"),
    }
    got = LimitSettings.from_settings(SimpleNamespace(**values))  # type: ignore[arg-type]
    assert got == LimitSettings(**{**values, "redis_url": "redis://:pw@h:6379/0"})
    assert LimitSettings.from_settings(SimpleNamespace(redis_url=""))  # type: ignore[arg-type]
    assert LimitSettings.from_settings(SimpleNamespace(redis_url="")).redis_url is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("user_max_in_flight", 0),
        ("key_max_in_flight", -1),
        ("upstream_model_concurrency", 0),
        ("key_rate_per_second", 0.0),
        ("key_rate_burst", 0),
        ("upstream_queue_wait_seconds", -0.1),
    ],
)
def test_settings_refuse_values_that_would_refuse_everything(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=f"KGW_{field.upper()}"):
        changes: dict[str, Any] = {field: value}  # named at run time: its type is that field's
        LimitSettings(**changes)


# --- cost when off
# -------------------------------------------------------------------------------------


async def test_no_limit_configured_costs_no_query(env: Env) -> None:
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(str(args[2]))

    p = await principal(env)
    event.listen(env.gw.engine.sync_engine, "before_cursor_execute", seen)
    try:
        lim = Limiter(
            env.gw.engine,
            env.gw.clock,
            LimitSettings(key_rate_burst=1, upstream_queue_wait_seconds=5),
        )
        for _ in range(50):
            await lim.admit(p, account(env), MODEL)
        async with lim.hold(account(env), MODEL):
            pass
        await lim.aclose()
    finally:
        event.remove(env.gw.engine.sync_engine, "before_cursor_execute", seen)
    assert not lim.configured  # enabled: always (per-key limits may exist)
    assert statements == []


async def test_one_count_query_per_admit_whatever_the_caps(env: Env) -> None:
    lim = Limiter(
        env.gw.engine,
        env.gw.clock,
        LimitSettings(user_max_in_flight=9, key_max_in_flight=9, upstream_model_concurrency=9),
    )
    p = await principal(env)
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(env.gw.engine.sync_engine, "before_cursor_execute", seen)
    try:
        await lim.admit(p, account(env), MODEL)
    finally:
        event.remove(env.gw.engine.sync_engine, "before_cursor_execute", seen)
    assert len(statements) == 1 and statements[0].count("count(") == 3


# --- in-flight caps
# ------------------------------------------------------------------------------------


async def test_user_cap_is_shared_by_the_users_keys(env: Env) -> None:
    lim = Limiter(env.gw.engine, env.gw.clock, LimitSettings(user_max_in_flight=2))
    other = await second_key(env)
    first, second = await principal(env), await principal(env, api_key=other)
    for p, key in ((first, None), (second, other)):
        assert await admit(lim, p, account(env), MODEL) is None
        await create(env, api_key=key)
    for p in (first, second):
        err = await admit(lim, p, account(env), MODEL)
        assert isinstance(err, ConcurrencyLimited) and err.code == 1303 and err.http_status == 429
        assert "this account: 2 tasks in progress (limit 2)" in err.message
    assert await admit(lim, await principal(env, "bob"), account(env), MODEL) is None


async def test_key_cap_leaves_the_users_other_keys_free(env: Env) -> None:
    lim = Limiter(
        env.gw.engine, env.gw.clock, LimitSettings(key_max_in_flight=1, user_max_in_flight=3)
    )
    first = await principal(env)
    assert await admit(lim, first, account(env), MODEL) is None
    await create(env)
    err = await admit(lim, first, account(env), MODEL)
    assert (
        isinstance(err, ConcurrencyLimited)
        and "this API key: 1 tasks in progress (limit 1)" in err.message
    )
    assert (
        await admit(lim, await principal(env, api_key=await second_key(env)), account(env), MODEL)
        is None
    )


@pytest.mark.parametrize(
    ("status", "counts"),
    [
        ("queued", True),
        ("submitted", True),
        ("processing", True),
        ("succeed", False),
        ("failed", False),
        ("rejected", False),
    ],
)
async def test_only_tasks_in_flight_hold_a_slot(env: Env, status: str, counts: bool) -> None:
    lim = Limiter(
        env.gw.engine,
        env.gw.clock,
        LimitSettings(user_max_in_flight=1, key_max_in_flight=1, upstream_model_concurrency=1),
    )
    task_id = await create(env)
    await set_status(env, task_id, status)
    err = await admit(lim, await principal(env), account(env), await upstream_model(env, task_id))
    assert isinstance(err, ConcurrencyLimited) if counts else err is None


async def test_a_task_finishing_frees_its_slot(env: Env) -> None:
    lim = Limiter(env.gw.engine, env.gw.clock, LimitSettings(key_max_in_flight=1))
    p = await principal(env)
    task_id = await create(env)
    assert isinstance(await admit(lim, p, account(env), MODEL), ConcurrencyLimited)
    await env.run_until_idle(10)
    assert (await env.get(task_id)).json()["data"]["task_status"] == "succeed"
    assert await admit(lim, p, account(env), MODEL) is None


async def test_upstream_cap_is_per_account_and_model_across_users(env: Env) -> None:
    lim = Limiter(env.gw.engine, env.gw.clock, LimitSettings(upstream_model_concurrency=2))
    model = await upstream_model(env, await create(env))
    await create(env, "bob")
    started = time.monotonic()
    err = await admit(lim, await principal(env), account(env), model)
    assert isinstance(err, ConcurrencyLimited)
    assert "upstream: 2 tasks in progress (limit 2); retry later" in err.message
    assert time.monotonic() - started < 0.5  # wait 0: refused at once
    assert await admit(lim, await principal(env), account(env), "kling-v1") is None
    assert await admit(lim, await principal(env), account(env) + 1, model) is None


# --- the bounded wait for an upstream slot
# -------------------------------------------------------------


async def test_wait_succeeds_when_a_slot_frees_in_time(env: Env) -> None:
    lim = Limiter(
        env.gw.engine,
        env.gw.clock,
        LimitSettings(upstream_model_concurrency=1, upstream_queue_wait_seconds=3.0),
    )
    task_id = await create(env)
    model = await upstream_model(env, task_id)

    async def finish_later() -> None:
        await asyncio.sleep(0.3)
        await set_status(env, task_id, "succeed")

    finisher = asyncio.create_task(finish_later())
    started = time.monotonic()
    assert await admit(lim, await principal(env, "bob"), account(env), model) is None
    waited = time.monotonic() - started
    await finisher
    assert 0.25 <= waited < 1.5


async def test_wait_gives_up_with_1303_when_no_slot_frees(env: Env) -> None:
    lim = Limiter(
        env.gw.engine,
        env.gw.clock,
        LimitSettings(upstream_model_concurrency=1, upstream_queue_wait_seconds=0.4),
    )
    model = await upstream_model(env, await create(env))
    started = time.monotonic()
    err = await admit(lim, await principal(env, "bob"), account(env), model)
    waited = time.monotonic() - started
    assert isinstance(err, ConcurrencyLimited) and "after waiting 0.4s" in err.message
    assert 0.4 <= waited < 1.2


async def test_hold_makes_the_upstream_cap_exact_in_one_process(env: Env) -> None:
    """Six concurrent creates against two free slots: exactly two pass when admit+insert are
    held."""
    lim = Limiter(env.gw.engine, env.gw.clock, LimitSettings(upstream_model_concurrency=2))
    model = await upstream_model(env, await create(env, "bob"))
    await set_status(
        env, (await env.gw.tasks.list_for_user(2, 0, 1))[0].id, "succeed"
    )  # probe row: freed
    p = await principal(env)

    async def one() -> bool:
        async with lim.hold(account(env), model):
            if await admit(lim, p, account(env), model) is not None:
                return False
            await create(env)
            return True

    results = await asyncio.gather(*(one() for _ in range(6)))
    assert sorted(results) == [False] * 4 + [True] * 2
    async with env.gw.engine.connect() as conn:
        active = (
            await conn.execute(
                select(func.count()).where(
                    tasks.c.upstream_model == model, tasks.c.status != "succeed"
                )
            )
        ).scalar()
    assert active == 2


async def test_hold_counts_the_queueing_against_the_wait(env: Env) -> None:
    """Three creates queued behind one full slot all give up after one wait, not one wait each."""
    lim = Limiter(
        env.gw.engine,
        env.gw.clock,
        LimitSettings(upstream_model_concurrency=1, upstream_queue_wait_seconds=0.3),
    )
    model = await upstream_model(env, await create(env))
    p = await principal(env, "bob")

    async def one() -> KlingError | None:
        async with lim.hold(account(env), model):
            return await admit(lim, p, account(env), model)

    started = time.monotonic()
    errors = await asyncio.gather(*(one() for _ in range(3)))
    assert all(isinstance(e, ConcurrencyLimited) for e in errors)
    assert time.monotonic() - started < 0.75


# --- request rate per key
# ------------------------------------------------------------------------------

# (seconds to advance the gateway clock, admits, expected outcomes) for 1 request/s, bursts of 3.
RATE_STEPS: list[tuple[float, int, list[bool]]] = [
    (0, 4, [True, True, True, False]),
    (0.5, 1, [False]),
    (0.5, 2, [True, False]),
    (2, 3, [True, True, False]),
    (3600, 4, [True, True, True, False]),
]


async def test_bucket_allows_the_burst_then_refills_with_time(env: Env) -> None:
    lim = Limiter(
        env.gw.engine, env.gw.clock, LimitSettings(key_rate_per_second=1.0, key_rate_burst=3)
    )
    p = await principal(env)
    for advance, n, expected in RATE_STEPS:
        env.clock.advance(advance)
        got = [await admit(lim, p, account(env), MODEL) for _ in range(n)]
        assert [e is None for e in got] == expected, (advance, got)
        for err in got:
            if err is not None:
                assert isinstance(err, RateLimited) and err.code == 1302 and err.http_status == 429
                assert (
                    "rate limit exceeded for this API key (1 per second, bursts of 3)"
                    in err.message
                )


async def test_bucket_is_per_key_and_checked_before_the_counts(env: Env) -> None:
    lim = Limiter(
        env.gw.engine,
        env.gw.clock,
        LimitSettings(key_rate_per_second=0.01, key_rate_burst=1, key_max_in_flight=1),
    )
    p = await principal(env)
    await create(env)  # the key is also at its in-flight cap: the rate refusal must win
    assert isinstance(await admit(lim, p, account(env), MODEL), ConcurrencyLimited)
    assert isinstance(await admit(lim, p, account(env), MODEL), RateLimited)
    assert (
        await admit(lim, await principal(env, api_key=await second_key(env)), account(env), MODEL)
        is None
    )


async def test_bucket_is_shared_by_gateway_processes(env: Env) -> None:
    """A second engine stands in for a second process: both draw from one bucket."""
    other_engine = make_engine(env.gw.engine.url.render_as_string(hide_password=False))
    try:
        settings = LimitSettings(key_rate_per_second=0.01, key_rate_burst=4)
        limiters = [
            Limiter(env.gw.engine, env.gw.clock, settings),
            Limiter(other_engine, env.gw.clock, settings),
        ]
        p = await principal(env)
        got = [await admit(limiters[i % 2], p, account(env), MODEL) is None for i in range(8)]
    finally:
        await other_engine.dispose()
    assert got == [True] * 4 + [False] * 4
