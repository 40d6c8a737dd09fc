"""Each run works in a PostgreSQL database of its own (tests/postgres.py): made on first use,
dropped at the end of the session, a killed run's left-over dropped by the next run on the host."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import make_url, text

from tests.postgres import (
    HOST_TAG,
    PREFIX,
    SERVER_URL,
    _engine,
    database_name,
    run_database,
    stale_databases,
)

ROOT = Path(__file__).resolve().parent.parent
ALIVE = {100, 200}


@pytest.mark.parametrize(
    ("name", "stale"),
    [
        (database_name(HOST_TAG, 999, "abcdef"), True),  # this host, process gone
        (database_name(HOST_TAG, 100, "abcdef"), False),  # this host, process alive: another run
        (
            database_name("0badc0de", 999, "abcdef"),
            False,
        ),  # another host: its pids mean nothing here
        (f"{PREFIX}{HOST_TAG}_999", False),  # not a run database's name
        ("test", False),
        ("kgw_h6", False),
        (database_name(HOST_TAG, 999, "abcdef") + "x", False),
    ],
)
def test_only_this_hosts_dead_runs_are_stale(name: str, stale: bool) -> None:
    assert stale_databases([name], HOST_TAG, ALIVE.__contains__) == ([name] if stale else [])


async def _databases() -> set[str]:
    engine = _engine(SERVER_URL)
    try:
        async with engine.connect() as conn:
            query = text("SELECT datname FROM pg_database WHERE datname LIKE :p")
            return set((await conn.execute(query, {"p": PREFIX + "%"})).scalars())
    finally:
        await engine.dispose()


async def test_the_run_works_in_a_database_of_its_own() -> None:
    name = make_url(await run_database()).database
    assert name != make_url(SERVER_URL).database
    assert name is not None and name.startswith(f"{PREFIX}{HOST_TAG}_{os.getpid()}_")
    assert name in await _databases()


async def test_a_run_drops_its_database_and_a_killed_runs_left_over(tmp_path: Path) -> None:
    await run_database()  # skips when PostgreSQL is unreachable

    gone = await asyncio.create_subprocess_exec("true")
    await gone.wait()
    left_over = database_name(HOST_TAG, gone.pid, "0f0f0f")
    engine = _engine(SERVER_URL)
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{left_over}"'))
    finally:
        await engine.dispose()

    out = tmp_path / "url"
    env = {**os.environ, "KGW_TEST_PROBE_OUT": str(out), "KGW_TEST_POSTGRES_URL": SERVER_URL}
    probe = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "tests/probes/run_database.py",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(probe.communicate(), 120)
    assert probe.returncode == 0, output.decode(errors="replace")
    inner = make_url(out.read_text()).database
    assert inner != make_url(await run_database()).database
    left = await _databases()
    assert inner not in left, "the run's database outlived its session"
    assert left_over not in left, "a killed run's database was not dropped"
