"""A create is answered once upstream accepted it, without waiting for the row to record upstream's
id; that write lands right after, and if it never does the refresher finds the task upstream by our
id."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest

from kling_gateway.domain.task import TaskStatus
from kling_gateway.storage.tasks import TaskStore
from tests.conftest import TEXT2VIDEO, Env

BODY = {"model_name": "kling-v2-6", "prompt": "a fox", "duration": "5"}


class GatedTasks(TaskStore):
    """The real store, whose status changes wait for ``gate`` (or fail with ``error``)."""

    __slots__ = ("error", "gate")

    def __init__(self, inner: TaskStore, env: Env) -> None:
        hot = env.gw.hot
        assert hot is not None  # build_gateway always opens the raw driver
        super().__init__(env.gw.engine, hot)
        self.gate = asyncio.Event()
        self.error: Exception | None = None

    async def transition(self, task_id: str, expected: TaskStatus, **kwargs: Any) -> bool:
        await self.gate.wait()
        if self.error is not None:
            raise self.error
        return await super().transition(task_id, expected, **kwargs)


def unsettled(env: Env) -> httpx.AsyncClient:
    """A client that returns with the reply (conftest's client also waits for the work that
    follows)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=env.app), base_url="http://gw")


async def create_unsettled(env: Env) -> httpx.Response:
    async with unsettled(env) as c:
        return await c.post(TEXT2VIDEO, json=BODY, headers=env.auth())


async def test_the_reply_does_not_wait_for_the_upstream_id_to_be_recorded(env: Env) -> None:
    real = env.gw.tasks
    gated = env.gw.tasks = GatedTasks(real, env)
    try:
        # a reply that waited for the gated write would never come
        resp = await asyncio.wait_for(create_unsettled(env), 5)
        assert resp.status_code == 200
        data = resp.json()["data"]
        assert data["task_status"] == "submitted"
        row = await real.get(data["task_id"])
        assert row is not None and row.status == TaskStatus.QUEUED.value  # not recorded yet...
        assert env.gw.background  # ...but on its way
        # what a client reads meanwhile is what Kling would say
        async with unsettled(env) as c:
            got = await c.get(f"{TEXT2VIDEO}/{data['task_id']}", headers=env.auth())
        assert got.json()["data"]["task_status"] == "submitted"
        gated.gate.set()
        await env.gw.drain()
    finally:
        env.gw.tasks = real
    row = await real.get(data["task_id"])
    assert row is not None and row.status == TaskStatus.SUBMITTED.value
    assert row.upstream_task_id in {t.task_id for t in env.sim.store.tasks.values()}
    assert not env.gw.background


async def test_a_write_that_never_lands_is_logged_and_the_refresher_recovers_the_task(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    real = env.gw.tasks
    gated = env.gw.tasks = GatedTasks(real, env)
    gated.error = RuntimeError("disk full")
    gated.gate.set()
    try:
        with caplog.at_level(logging.ERROR, logger="kling_gateway.gateway"):
            resp = await create_unsettled(env)
            await env.gw.drain()
    finally:
        env.gw.tasks = real
    task_id = resp.json()["data"]["task_id"]
    assert resp.status_code == 200
    assert f"recording task {task_id} as submitted failed: disk full" in caplog.text
    row = await real.get(task_id)
    assert (
        row is not None and row.status == TaskStatus.QUEUED.value and row.upstream_task_id is None
    )
    await env.run_until_idle(seconds=10)  # the row's first look is due at the request's deadline
    row = await real.get(task_id)
    assert row is not None and row.upstream_task_id is not None
    assert row.status != TaskStatus.QUEUED.value
    assert env.sim.tasks_created() == 1  # found upstream by our id, not sent again


async def test_drain_waits_for_work_started_by_work(env: Env) -> None:
    done: list[str] = []

    async def inner() -> None:
        await asyncio.sleep(0.01)
        done.append("inner")

    async def outer() -> None:
        await asyncio.sleep(0.01)
        env.gw.after_reply(inner(), "inner")
        done.append("outer")

    env.gw.after_reply(outer(), "outer")
    await env.gw.drain()
    assert done == ["outer", "inner"]
    assert not env.gw.background
