"""Several nodes starting at the same moment on a fresh PostgreSQL database all come up: each seeds
the upstream account and tries the first-start bootstrap, and exactly one of them wins each (before,
the others died on a unique violation). Found while building tests/multinode, which also covers the
migration lock with real processes; in-process alembic is not safe to run concurrently, hence
``migrate=False`` here after one upgrade."""

from __future__ import annotations

import asyncio
from pathlib import Path

from kling_gateway.services import admin
from kling_gateway.services.gateway import Gateway, build_gateway
from kling_gateway.storage.db import make_engine, upgrade
from tests.conftest import make_settings
from tests.postgres import fresh_run_database

NODES = 4


async def test_nodes_starting_together_on_a_fresh_database_all_come_up(tmp_path: Path) -> None:
    url = await fresh_run_database()
    engine = make_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    settings = make_settings(tmp_path, url)
    starts = [build_gateway(settings, migrate=False) for _ in range(NODES)]
    started = await asyncio.gather(*starts, return_exceptions=True)
    gateways = [g for g in started if isinstance(g, Gateway)]
    try:
        assert len(gateways) == NODES, [g for g in started if not isinstance(g, Gateway)]
        issued = await asyncio.gather(
            *(admin.bootstrap(gw) for gw in gateways), return_exceptions=True
        )
        assert sum(isinstance(key, admin.IssuedKey) for key in issued) == 1, issued
        assert issued.count(None) == NODES - 1, issued
        assert [u.name for u in await gateways[0].accounts.list_users()] == [admin.BOOTSTRAP_USER]
        assert len(await gateways[0].upstreams.accounts()) == 1
    finally:
        await asyncio.gather(*(gw.aclose() for gw in gateways))
