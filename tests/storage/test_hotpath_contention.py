"""SQLite under contention: while another connection holds the write lock, hot-path writes wait off
the event loop (fallback connection) instead of failing, and concurrent fallbacks never share a
transaction."""

from __future__ import annotations

import asyncio
import sqlite3

from kling_gateway.storage.money import MoneyStore
from tests.conftest import Env

BODY = {"model_name": "kling-v3", "prompt": "x", "duration": "5"}


async def test_writes_wait_for_a_foreign_writer_and_all_land(env: Env) -> None:
    path = env.gw.engine.url.database or ""
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    try:
        pending = [asyncio.create_task(env.create(BODY)) for _ in range(12)]
        await asyncio.sleep(0.3)
        assert not any(t.done() for t in pending)  # waiting, not failing
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    results = await asyncio.gather(*pending)
    assert [r.status_code for r in results] == [200] * 12, [
        r.text for r in results if r.status_code != 200
    ]
    await env.run_until_idle(8)
    user = await env.gw.accounts.get_user("alice")
    assert user is not None
    store = MoneyStore(env.gw.engine)
    assert await store.balance(user.id) == await store.ledger_sum(user.id)
    assert len({r.json()["data"]["task_id"] for r in results}) == 12
