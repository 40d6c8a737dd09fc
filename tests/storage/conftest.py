"""The storage suites' shared fixture: a migrated engine on SQLite and on PostgreSQL (reset, or
skipped loudly when unreachable)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kling_gateway.storage.db import make_engine, upgrade
from kling_gateway.storage.hotpath import HotPath
from kling_gateway.storage.tasks import TaskStore
from tests.conftest import any_database_url
from tests.postgres import reset_schema


@pytest.fixture(params=["sqlite", "postgres"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = await any_database_url(request.param, tmp_path, "store.db")
    if url.startswith("postgresql"):
        await reset_schema(url)
    eng = make_engine(url)
    await upgrade(eng)
    try:
        yield eng
    finally:
        await eng.dispose()


@contextlib.asynccontextmanager
async def task_store(engine: AsyncEngine) -> AsyncIterator[TaskStore]:
    """The task store as build_gateway makes it: on its own driver connection, closed after."""
    hot = await HotPath.open(engine)
    try:
        yield TaskStore(engine, hot)
    finally:
        await hot.close()


@pytest.fixture
async def tasks(engine: AsyncEngine) -> AsyncIterator[TaskStore]:
    async with task_store(engine) as store:
        yield store
