"""A paid create through the whole app on PostgreSQL talks to the database twice: the reserve with
the task insert, then the compare-and-set to submitted (docs/benchmarks.md). Counted at the drivers:
every statement the task store's asyncpg pool sends, and every one the SQLAlchemy engine runs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event

from kling_gateway.storage.hotpath import HotPath
from kling_gateway.storage.tasks import TaskStore
from tests.conftest import Env, any_database_url

BODY = {"model_name": "kling-v2-6", "prompt": "a fox", "duration": "5"}


@pytest.fixture
async def database_url(tmp_path: Any) -> str:
    return await any_database_url("postgres", tmp_path)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"key_cache_seconds": 60.0}  # as deployed: a key is read once a minute, not per request


@pytest.mark.parametrize("callback_url", [None, "https://hooks.example.com/x"])
async def test_a_create_is_two_round_trips(env: Env, callback_url: str | None) -> None:
    sent: list[str] = []
    hot = await HotPath.open(env.gw.engine, on_query=lambda q: sent.append(q.query))
    real = env.gw.tasks
    env.gw.tasks = TaskStore(env.gw.engine, hot)

    def on_engine(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    body = {**BODY, "callback_url": callback_url} if callback_url else BODY
    event.listen(env.gw.engine.sync_engine, "before_cursor_execute", on_engine)
    try:
        assert (await env.create(body)).status_code == 200  # warms the key cache and statements
        await asyncio.sleep(0)  # asyncpg calls its query loggers soon after, not inline
        sent.clear()
        resp = await env.create(body)
        await asyncio.sleep(0)
    finally:
        event.remove(env.gw.engine.sync_engine, "before_cursor_execute", on_engine)
        env.gw.tasks = real
        await hot.close()
    assert resp.status_code == 200 and resp.json()["data"]["task_status"] == "submitted"
    assert len(sent) == 2, sent
