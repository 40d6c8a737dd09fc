"""Each test run's own PostgreSQL database, so two runs on one machine cannot disturb each other.

``KGW_TEST_POSTGRES_URL`` names the server: its database is only where CREATE/DROP DATABASE are
issued. The run's database is created on first use, named after this host and process, and dropped
when the session ends (``pytest_sessionfinish`` in tests/conftest.py). A run killed before that
leaves its database behind; the next run on this host drops it once that run's process is gone.
Tests that need PostgreSQL skip loudly, naming the URL, when the server cannot be reached.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

SERVER_URL = os.environ.get(
    "KGW_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
CONNECT_SECONDS = 5.0  # an unreachable host skips in seconds, not asyncpg's default minute
PREFIX = "kgw_test_"
_NAME = re.compile(rf"^{PREFIX}([0-9a-f]{{8}})_(\d+)_[0-9a-f]{{6}}$")
HOST_TAG = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def database_name(host_tag: str, pid: int, token: str) -> str:
    return f"{PREFIX}{host_tag}_{pid}_{token}"


def stale_databases(names: Iterable[str], host_tag: str, alive: Callable[[int], bool]) -> list[str]:
    """The run databases of this host whose process is gone. Other hosts' databases and anything not
    named by ``database_name`` are never ours to drop."""
    stale = []
    for name in names:
        m = _NAME.match(name)
        if m and m.group(1) == host_tag and not alive(int(m.group(2))):
            stale.append(name)
    return stale


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


@dataclass
class _Run:
    url: str | None = None
    unreachable: str | None = None  # why the server could not be reached, once known


_run = _Run()


def _engine(url: str) -> AsyncEngine:
    return create_async_engine(
        url,
        isolation_level="AUTOCOMMIT",
        poolclass=NullPool,
        connect_args={"timeout": CONNECT_SECONDS},
    )


def _url_of(name: str) -> str:
    return make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)


async def _create() -> str:
    name = database_name(HOST_TAG, os.getpid(), secrets.token_hex(3))
    engine = _engine(SERVER_URL)
    try:
        try:
            conn = await engine.connect()
        except Exception as exc:  # unreachable, refused, bad credentials: all a reason to skip
            _run.unreachable = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            raise
        try:
            query = text("SELECT datname FROM pg_database WHERE datname LIKE :p")
            names = (await conn.execute(query, {"p": PREFIX + "%"})).scalars()
            for old in stale_databases(names, HOST_TAG, pid_alive):
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{old}" WITH (FORCE)'))
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            await conn.close()
    finally:
        await engine.dispose()
    return _url_of(name)


async def run_database() -> str:
    """The URL of this run's database, created on first use; skips the test when the server is
    unreachable (asked once per run)."""
    if _run.url is None and _run.unreachable is None:
        try:
            _run.url = await _create()
        except Exception:
            if _run.unreachable is None:
                raise  # reachable, yet the database could not be made: an error, not a skip
    if _run.url is None:
        pytest.skip(
            f"PostgreSQL not reachable at {SERVER_URL} (set KGW_TEST_POSTGRES_URL): "
            f"{_run.unreachable}"
        )
    return _run.url


async def reset_schema(url: str) -> None:
    """An empty ``public`` schema in the run's database, for a test that starts from nothing."""
    engine = _engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


async def fresh_run_database() -> str:
    """This run's database with an empty schema (skips when PostgreSQL is unreachable)."""
    url = await run_database()
    await reset_schema(url)
    return url


async def _drop(url: str) -> None:
    engine = _engine(SERVER_URL)
    try:
        async with engine.connect() as conn:
            name = make_url(url).database
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()


def drop_run_database() -> None:
    """At the end of the session: drop the run's database if one was made (its children's
    connections too, WITH (FORCE))."""
    if _run.url is not None:
        asyncio.run(_drop(_run.url))
        _run.url = None
