"""Health probes: latency or error recorded per account, one probe per interval across nodes."""

from __future__ import annotations

from typing import Any

import pytest

from kling_gateway.services import channel_admin
from kling_gateway.worker.probe import Prober
from tests.conftest import Env


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"channel_probe_seconds": 30}


async def test_probe_records_latency_and_waits_for_its_turn(env: Env) -> None:
    prober = Prober(env.gw)
    assert await prober.run_once() == 1
    (acc,) = await env.gw.upstreams.accounts()
    assert acc.probe_error is None and acc.probe_ms is not None and acc.probed_at == env.gw.now_ms()
    assert await prober.run_once() == 0  # not due yet…
    assert await Prober(env.gw).run_once() == 0  # …for another node either
    env.clock.advance(31)
    assert await prober.run_once() == 1


async def test_failed_probe_is_recorded_and_an_answer_ends_an_unreachable_spell(env: Env) -> None:
    env.sim.config.latency_seconds = 5  # beyond the 0.5 s read timeout
    assert await Prober(env.gw).run_once() == 1
    (acc,) = await env.gw.upstreams.accounts()
    assert acc.probe_error is not None and "5002" in acc.probe_error
    channel = env.gw.upstream.all()[0]
    channel.local_cooldown_until, channel.local_reason = (
        env.gw.now_ms() + 60_000,
        "upstream 5001: down",
    )
    env.sim.config.latency_seconds = 0
    env.clock.advance(31)
    assert await Prober(env.gw).run_once() == 1
    assert channel.benched(env.gw.now_ms()) is None
    assert (await channel_admin.show(env.gw, "simulator"))["probe"]["error"] is None


async def test_disabled_accounts_are_not_probed(env: Env) -> None:
    await channel_admin.update(env.gw, "simulator", enabled=False)
    assert await Prober(env.gw).run_once() == 0


@pytest.mark.parametrize("settings_overrides", [{"channel_probe_seconds": 0}])
async def test_probing_can_be_off(env: Env) -> None:
    assert await Prober(env.gw).run_once() == 0
