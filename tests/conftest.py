"""Shared fixtures: the real gateway app in front of the built-in simulator, on a hand-driven clock.

``env`` runs both apps' lifespans in-process; the gateway reaches the simulator through an ASGI
transport that also enforces a read timeout (``httpx.ASGITransport`` itself has none), so hang and
timeout faults behave as they do over a socket.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from cryptography.fernet import Fernet

from kling_gateway.http.app import create_app
from kling_gateway.services import admin, money
from kling_gateway.services.gateway import Gateway
from kling_gateway.settings import Settings
from kling_gateway.upstream.simulator import (
    ManualClock,
    Simulator,
    SimulatorConfig,
    create_simulator_app,
)
from kling_gateway.worker.poller import Poller
from tests.postgres import drop_run_database, reset_schema, run_database

TEXT2VIDEO = "/kling/v1/videos/text2video"


class TimeoutASGITransport(httpx.AsyncBaseTransport):
    def __init__(self, app: Any, read_timeout: float) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.read_timeout = read_timeout
        self.sent: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        try:
            return await asyncio.wait_for(
                self.inner.handle_async_request(request), self.read_timeout
            )
        except TimeoutError:
            raise httpx.ReadTimeout("simulated read timeout", request=request) from None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    drop_run_database()  # this run's PostgreSQL database (tests/postgres.py), if one was made


@dataclass
class Env:
    gw: Gateway
    sim: Simulator
    client: httpx.AsyncClient
    clock: ManualClock
    upstream: TimeoutASGITransport
    keys: dict[str, str] = field(default_factory=dict)
    app: Any = None  # the gateway's ASGI app, for a client of a test's own

    def sent_bodies(self) -> list[dict[str, Any]]:
        """JSON bodies the gateway POSTed upstream, in order."""
        return [orjson.loads(r.content) for r in self.upstream.sent if r.method == "POST"]

    def auth(self, user: str = "alice") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[user]}"}

    async def create(self, body: dict[str, Any], user: str = "alice") -> httpx.Response:
        return await self.client.post(TEXT2VIDEO, json=body, headers=self.auth(user))

    async def get(self, ident: str, user: str = "alice") -> httpx.Response:
        return await self.client.get(f"{TEXT2VIDEO}/{ident}", headers=self.auth(user))

    async def run_until_idle(self, seconds: float = 10.0, step: float = 1.0) -> None:
        """Advance the shared clock in steps, letting the refresher work after each one."""
        poller = Poller(self.gw)
        elapsed = 0.0
        while elapsed < seconds:
            self.clock.advance(step)
            elapsed += step
            await poller.run_once()


def settled(app: Any) -> httpx.ASGITransport:
    """An in-process client transport whose requests return once the writes the gateway left running
    after its reply (``Gateway.after_reply``) have landed too, so a test may read the database at
    once. The reply-first behaviour itself is tested in tests/services/test_reply_first.py."""

    async def app_then_drain(scope: Any, receive: Any, send: Any) -> None:
        await app(scope, receive, send)
        gw = getattr(app.state, "gateway", None)
        if gw is not None:
            await gw.drain()

    return httpx.ASGITransport(app=app_then_drain)


def make_settings(tmp_path: Path, database_url: str | None = None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url or f"sqlite+aiosqlite:///{tmp_path}/gw.db",
        "master_key": Fernet.generate_key().decode(),
        "upstream": "simulator",
        "first_poll_seconds": 0.5,
        "max_poll_seconds": 2.0,
        "upstream_read_timeout": 0.5,
        "key_cache_seconds": 0.0,
        "poll_jitter": 0.0,  # deterministic schedules; jitter has its own tests
        "outbound_allow": "127.0.0.1",  # test receivers listen on loopback
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sim_config() -> SimulatorConfig:
    return SimulatorConfig(submitted_seconds=1.0, processing_seconds=3.0, seed=7)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/gw.db"


async def any_database_url(backend: str, tmp_path: Path, name: str = "gw.db") -> str:
    """SQLite in tmp_path, or this run's PostgreSQL database (``env`` resets it), skipping loudly
    when PostgreSQL is unreachable."""
    if backend == "postgres":
        return await run_database()
    return f"sqlite+aiosqlite:///{tmp_path}/{name}"


@pytest.fixture(params=["sqlite", "postgres"])
async def both_databases(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """``database_url = both_databases`` in a module runs its ``env`` tests on both backends."""
    return await any_database_url(request.param, tmp_path)


@pytest.fixture
async def env(
    tmp_path: Path,
    clock: ManualClock,
    sim_config: SimulatorConfig,
    database_url: str,
    settings_overrides: dict[str, Any],
) -> AsyncIterator[Env]:
    if database_url.startswith("postgresql"):
        await reset_schema(database_url)
    settings = make_settings(tmp_path, database_url, **settings_overrides)
    sim_app = create_simulator_app(sim_config, clock=clock)
    transport = TimeoutASGITransport(sim_app, settings.upstream_read_timeout)
    app = create_app(settings, transport=transport, clock=clock, run_poller=False)
    async with sim_app.router.lifespan_context(sim_app), app.router.lifespan_context(app):
        gw: Gateway = app.state.gateway
        keys = {}
        for user in ("alice", "bob"):
            created = await admin.create_user(gw, user)
            await money.adjust(gw, created.id, "1000000", debit=False, note="test funds")
            issued = await admin.create_key(gw, user)
            assert issued.api_key is not None
            keys[user] = issued.api_key
        async with httpx.AsyncClient(transport=settled(app), base_url="http://gw") as client:
            yield Env(
                gw=gw,
                sim=sim_app.state.sim,
                client=client,
                clock=clock,
                upstream=transport,
                keys=keys,
                app=app,
            )
