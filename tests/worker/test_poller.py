"""The refresher (worker.poller.Poller) on the real gateway + simulator, on the ManualClock."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from kling_gateway.domain.task import TaskStatus
from kling_gateway.storage.tasks import TaskRecord
from kling_gateway.worker.poller import Poller
from tests.conftest import Env


async def create_task(env: Env, prompt: str = "a fox", **extra: Any) -> str:
    resp = await env.create({"model_name": "kling-v2-6", "prompt": prompt, **extra})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["data"]["task_id"])


async def status_of(env: Env, task_id: str) -> str:
    record = await env.gw.tasks.get(task_id)
    assert record is not None
    return record.status


async def insert_broken_task(env: Env, next_poll_at: int) -> str:
    """A queued row upstream never saw, whose stored body cannot be parsed: resubmitting crashes."""
    alice = await env.gw.accounts.get_user("alice")
    assert alice is not None
    now = env.gw.now_ms()
    task_id = env.gw.ids.mint(now)
    await env.gw.tasks.insert(
        TaskRecord(
            id=task_id,
            user_id=alice.id,
            key_id=None,
            public_model="kling-v2-6",
            upstream_model="kling-v2-6",
            status=TaskStatus.QUEUED.value,
            status_msg="",
            external_task_id=None,
            request_hash="0" * 64,
            request_json="{not json",
            callback_url=None,
            mode="std",
            duration=5,
            sound=False,
            watermark=False,
            upstream_account_id=env.gw.primary().account_id,
            upstream_task_id=None,
            result_json=None,
            unit_deduction=None,
            created_at=now,
            updated_at=now,
            next_poll_at=next_poll_at,
            poll_attempts=0,
        )
    )
    return task_id


async def test_run_once_returns_the_number_of_due_tasks(env: Env) -> None:
    poller = Poller(env.gw)
    assert await poller.run_once() == 0  # nothing at all
    for i in range(3):
        await create_task(env, f"p{i}")
    assert await poller.run_once() == 0  # created just now: first look is first_poll_seconds away
    env.clock.advance(0.5)
    assert await poller.run_once() == 3
    assert await poller.run_once() == 0  # each one was rescheduled into the future


async def test_task_moves_forward_over_successive_passes(env: Env) -> None:
    poller = Poller(env.gw)
    task_id = await create_task(env)
    assert await status_of(env, task_id) == "submitted"

    env.clock.advance(1.2)  # simulator: submitted for 1 s, then processing for 3 s
    assert await poller.run_once() == 1
    assert await status_of(env, task_id) == "processing"

    env.clock.advance(1.0)
    assert await poller.run_once() == 1
    assert await status_of(env, task_id) == "processing"

    env.clock.advance(2.0)
    assert await poller.run_once() == 1
    record = await env.gw.tasks.get(task_id)
    assert record is not None and record.status == "succeed"
    assert record.next_poll_at is None and record.result_json and ".mp4" in record.result_json
    assert record.poll_attempts == 3

    env.clock.advance(60)
    assert await poller.run_once() == 0  # terminal tasks are never due again
    got = (await env.get(task_id)).json()["data"]
    assert got["task_status"] == "succeed" and got["task_result"]["videos"]


async def test_a_crashing_task_does_not_stop_the_pass(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    poller = Poller(env.gw)
    good = [await create_task(env, f"good {i}") for i in range(2)]
    broken = await insert_broken_task(env, next_poll_at=env.gw.now_ms())  # due first
    env.clock.advance(0.5)
    with caplog.at_level(logging.ERROR, logger="kling_gateway.poller"):
        assert await poller.run_once() == 3
    assert any("crashed" in r.getMessage() for r in caplog.records)
    for _ in range(10):
        env.clock.advance(1.0)
        await poller.run_once()
    assert [await status_of(env, t) for t in good] == ["succeed", "succeed"]
    assert await status_of(env, broken) == "queued"  # untouched, not mangled


@pytest.mark.parametrize("settings_overrides", [{"refresh_batch": 1}])
async def test_a_crashing_task_does_not_starve_the_others(env: Env) -> None:
    poller = Poller(env.gw)
    good = await create_task(env)
    await insert_broken_task(env, next_poll_at=env.gw.now_ms() - 1)
    for _ in range(10):
        env.clock.advance(1.0)
        await poller.run_once()
    assert await status_of(env, good) == "succeed"


async def test_run_exits_at_once_when_stop_is_already_set(env: Env) -> None:
    stop = asyncio.Event()
    stop.set()
    await asyncio.wait_for(Poller(env.gw).run(stop), 0.5)


async def test_run_exits_promptly_while_sleeping(env: Env) -> None:
    # default refresh_interval_seconds is 1 s: the loop must wake on stop, not when its sleep ends
    assert env.gw.settings.refresh_interval_seconds >= 1.0
    stop = asyncio.Event()
    runner = asyncio.create_task(Poller(env.gw).run(stop))
    await asyncio.sleep(0.05)
    assert not runner.done()
    loop = asyncio.get_running_loop()
    started = loop.time()
    stop.set()
    await asyncio.wait_for(runner, 0.5)
    assert loop.time() - started < 0.5


@pytest.mark.parametrize("settings_overrides", [{"refresh_interval_seconds": 0.01}])
async def test_run_refreshes_tasks_until_stopped(env: Env) -> None:
    task_id = await create_task(env)
    stop = asyncio.Event()
    runner = asyncio.create_task(Poller(env.gw).run(stop))
    try:
        for _ in range(200):
            env.clock.advance(0.25)
            await asyncio.sleep(0.01)
            if await status_of(env, task_id) == "succeed":
                break
        assert await status_of(env, task_id) == "succeed"
    finally:
        stop.set()
        await asyncio.wait_for(runner, 1.0)


class FlakyDue:
    """The real TaskStore, but ``claim_due`` fails the first ``failures`` times (the DB blipped)."""

    def __init__(self, inner: Any, failures: int) -> None:
        self._inner = inner
        self.failures = failures
        self.calls = 0

    async def claim_due(
        self, now_ms: int, limit: int, owner: str, lease_ms: int
    ) -> list[TaskRecord]:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("database went away")
        result: list[TaskRecord] = await self._inner.claim_due(now_ms, limit, owner, lease_ms)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.mark.parametrize("settings_overrides", [{"refresh_interval_seconds": 0.01}])
async def test_run_survives_a_failing_pass(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    task_id = await create_task(env)
    flaky = FlakyDue(env.gw.tasks, failures=2)
    env.gw.tasks = flaky  # type: ignore[assignment]
    stop = asyncio.Event()
    with caplog.at_level(logging.ERROR, logger="kling_gateway.poller"):
        runner = asyncio.create_task(Poller(env.gw).run(stop))
        try:
            for _ in range(200):
                env.clock.advance(0.25)
                await asyncio.sleep(0.01)
                if await status_of(env, task_id) == "succeed":
                    break
        finally:
            stop.set()
            await asyncio.wait_for(runner, 1.0)
    assert flaky.calls > 2
    assert await status_of(env, task_id) == "succeed"
    assert sum("pass failed" in r.getMessage() for r in caplog.records) == 2
