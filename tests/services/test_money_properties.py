"""Property: over random interleavings of submits, polls, racing callbacks, timeouts, replays and
crash-restarts, every credit is accounted for exactly once.

For every terminal task: charged = rate × billed seconds (or 0 when it failed) and its reserve is
closed exactly once; no reserve is left open once everything ended; the sum of each user's ledger
entries equals their balance, which never goes below zero.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kling_gateway.domain.task import TERMINAL, TaskStatus
from kling_gateway.http.app import create_app
from kling_gateway.services import admin, money
from kling_gateway.storage.money import MoneyStore
from kling_gateway.upstream.client import UpstreamTask
from kling_gateway.upstream.simulator import ManualClock, SimulatorConfig, create_simulator_app
from kling_gateway.worker.poller import Poller
from tests.conftest import TEXT2VIDEO, TimeoutASGITransport, make_settings

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("submit"), st.sampled_from([5, 10]), st.booleans()),
        st.tuples(st.just("poll"), st.sampled_from([0.5, 1.0, 3.0])),
        st.tuples(st.just("callback"), st.integers(0, 50)),
        st.tuples(st.just("replay"), st.integers(0, 50)),
        st.tuples(st.just("timeout")),
        st.tuples(st.just("restart")),
    ),
    min_size=3,
    max_size=25,
)


class World:
    def __init__(self, root: Path, clock: ManualClock) -> None:
        self.root, self.clock = root, clock
        self.master = Fernet.generate_key().decode()
        self.sim_app = create_simulator_app(
            SimulatorConfig(
                seed=11, concurrency_per_model=1000, submitted_seconds=1, processing_seconds=2
            ),
            clock=clock,
        )
        self.key = ""
        self.user_id = 0
        self.stack: Any = None

    async def start(self) -> None:
        settings_ = make_settings(
            self.root, master_key=self.master, task_timeout_seconds=40, upstream_read_timeout=0.5
        )
        self.app = create_app(
            settings_,
            transport=TimeoutASGITransport(self.sim_app, 0.5),
            clock=self.clock,
            run_poller=False,
        )
        self.ctx = self.app.router.lifespan_context(self.app)
        await self.ctx.__aenter__()
        self.gw = self.app.state.gateway
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://gw"
        )

    async def stop(self) -> None:
        await self.client.aclose()
        await self.ctx.__aexit__(None, None, None)

    async def task_ids(self) -> list[str]:
        return [t.id for t in await self.gw.tasks.list_all(1000)]


async def scenario(ops: list[tuple[Any, ...]]) -> None:
    clock = ManualClock()
    with tempfile.TemporaryDirectory() as tmp:
        world = World(Path(tmp), clock)
        async with world.sim_app.router.lifespan_context(world.sim_app):
            await world.start()
            user = await admin.create_user(world.gw, "p")
            world.user_id = user.id
            await money.adjust(
                world.gw, user.id, "20", debit=False, note=None
            )  # not enough for every submit
            issued = await admin.create_key(world.gw, "p")
            world.key = f"Bearer {issued.api_key}"
            try:
                for op in ops:
                    await apply_op(world, op)
                for _ in range(60):  # let everything end: polls, timeouts
                    clock.advance(2)
                    await Poller(world.gw).run_once()
                await check(world)
            finally:
                await world.stop()


async def apply_op(world: World, op: tuple[Any, ...]) -> None:
    kind = op[0]
    gw = world.gw
    if kind == "submit":
        world.sim_app.state.sim.config.task_failure_rate = 1.0 if op[2] else 0.0
        body = {"model_name": "kling-v3", "prompt": "x", "duration": op[1]}
        resp = await world.client.post(TEXT2VIDEO, json=body, headers={"Authorization": world.key})
        assert resp.status_code in (200, 429), resp.text
    elif kind == "poll":
        world.clock.advance(op[1])
        await Poller(gw).run_once()
    elif kind in ("callback", "replay"):
        ids = await world.task_ids()
        if not ids:
            return
        record = await gw.tasks.get(ids[op[1] % len(ids)])
        assert record is not None
        if kind == "callback" and record.upstream_task_id:  # a callback racing the poller
            sim_task = world.sim_app.state.sim.task(record.upstream_task_id)
            world.sim_app.state.sim.advance()
            if sim_task is not None:
                await gw.refresher.apply(record, UpstreamTask.from_wire(sim_task.wire()))
        elif kind == "replay" and record.task_status in TERMINAL:  # a duplicate terminal write
            await gw.mover.move(
                record, TaskStatus.PROCESSING, status=TaskStatus.FAILED.value, next_poll_at=None
            )
    elif kind == "timeout":
        world.clock.advance(45)
        await Poller(gw).run_once()
    elif kind == "restart":  # crash-restart: all in-memory state gone, the database stays
        await world.stop()
        await world.start()


async def check(world: World) -> None:
    store = MoneyStore(world.gw.engine)
    entries = await store.entries(world.user_id)
    closes = Counter(e.task_id for e in entries if e.kind == "close")
    reserves = {e.task_id: -e.amount_micro for e in entries if e.kind == "reserve"}
    for t in await world.gw.tasks.list_all(1000):
        assert t.task_status in TERMINAL, f"task {t.id} still {t.status}"
        assert reserves.get(t.id, 0) == t.reserved_micro
        if t.reserved_micro:
            assert closes[t.id] == 1, f"task {t.id} closed {closes[t.id]} times"
            rate = t.reserved_micro // t.duration
            expected = rate * t.duration if t.task_status is TaskStatus.SUCCEED else 0
            assert t.charged_micro == expected
    balance = await store.balance(world.user_id)
    assert balance >= 0
    assert balance == await store.ledger_sum(world.user_id)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPS)
def test_every_credit_is_accounted_for_exactly_once(ops: list[tuple[Any, ...]]) -> None:
    asyncio.run(scenario(ops))
