"""Run by tests/multinode/test_cleanup.py in a pytest of its own (not collected: no ``test_`` file
name): a one-node cluster on SQLite (no PostgreSQL needed) whose children's pids go to
KGW_TEST_PROBE_OUT."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.multinode.cluster import Cluster


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    c = Cluster(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/gw.db", nodes=1)
    try:
        async with httpx.AsyncClient() as client:
            await c.sim.start()
            await c.sim.wait_ready(client)
            await c.start_gateway(0, client)
        pids = [str(child.proc.pid) for child in (c.sim, *c.gateways) if child.proc is not None]
        # Written whole, then renamed: the outer test polls for the file and must never read it
        # half-written.
        out = Path(os.environ["KGW_TEST_PROBE_OUT"])
        part = out.with_name(out.name + ".part")
        part.write_text(" ".join(pids))
        part.replace(out)
        yield c
    finally:
        await c.close()


async def test_hold(cluster: Cluster) -> None:
    await asyncio.sleep(120)  # until the outer test SIGTERMs this pytest


async def test_fail(cluster: Cluster) -> None:
    raise AssertionError("probe failure")
