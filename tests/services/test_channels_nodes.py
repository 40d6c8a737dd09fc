"""Upstream accounts across processes: what one node changes or learns, every node acts on after its
next reload (SQLite file and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from kling_gateway.services import channel_admin
from kling_gateway.services.gateway import build_gateway
from kling_gateway.upstream.simulator import ManualClock
from tests.conftest import make_settings
from tests.postgres import reset_schema

database_url = pytest.fixture(lambda both_databases: both_databases, name="database_url")


async def test_cooldowns_and_edits_reach_every_node(tmp_path: Path, database_url: str) -> None:
    if database_url.startswith("postgresql"):
        await reset_schema(database_url)
    clock = ManualClock()
    settings = make_settings(tmp_path, database_url)
    one = await build_gateway(settings, clock=clock)
    two = await build_gateway(settings, clock=clock, migrate=False)
    try:
        await channel_admin.add(one, "b", "http://127.0.0.2:8001", api_key="api-key-for-b")
        channel = next(c for c in one.upstream.all() if c.name == "simulator")
        await one.upstream.cool(channel, one.now_ms() + 60_000, "upstream 1102: balance")
        await two.refresh_catalog()
        seen = {c.name: c for c in two.upstream.all()}
        assert set(seen) == {"simulator", "b"}
        assert "1102" in (seen["simulator"].unavailable(two.now_ms()) or "")
        assert (await two.upstream.pick("kling-v2-6")) is seen["b"]

        await channel_admin.update(one, "b", enabled=False)
        await two.refresh_catalog()
        assert await two.upstream.pick("kling-v2-6") is None
        clock.advance(61)
        assert (await two.upstream.pick("kling-v2-6")) is seen["simulator"]
    finally:
        await two.aclose()
        await one.aclose()


async def test_auto_mode_never_sends_real_traffic_to_the_simulator(tmp_path: Path) -> None:
    """Accounts added by the operator while no KGW_KLING_* credentials are set: the seeded simulator
    account is switched off on the next start instead of taking a share of the traffic."""
    settings = make_settings(tmp_path, upstream="auto")  # one Settings, so one master key
    gw = await build_gateway(settings)
    try:
        await channel_admin.add(
            gw, "real", "https://api-singapore.klingai.com", api_key="real-api-key-1"
        )
    finally:
        await gw.aclose()
    gw = await build_gateway(settings)
    try:
        states = {v["name"]: v["state"] for v in await channel_admin.describe(gw)}
        assert states == {"simulator": "disabled", "real": "ok"}
    finally:
        await gw.aclose()


async def test_kling_mode_keeps_the_default_account_in_step_with_settings(tmp_path: Path) -> None:
    master = Fernet.generate_key().decode()  # one key across restarts, as in production
    base = {
        "upstream": "kling",
        "kling_base_url": "https://api-singapore.klingai.com",
        "master_key": master,
    }
    gw = await build_gateway(make_settings(tmp_path, **base, kling_api_key="first-api-key-123"))
    await gw.aclose()
    gw = await build_gateway(make_settings(tmp_path, **base, kling_api_key="first-api-key-123"))
    try:
        (view,) = await channel_admin.describe(gw)
        assert [k["hint"] for k in view["keys"]] == [
            "firs…-123"
        ]  # a restart did not add a second key
    finally:
        await gw.aclose()
    gw = await build_gateway(make_settings(tmp_path, **base, kling_api_key="second-api-key-456"))
    try:
        (view,) = await channel_admin.describe(gw)
        assert view["name"] == "default" and len(view["keys"]) == 1
        assert view["keys"][0]["hint"] == "seco…-456"
    finally:
        await gw.aclose()
