"""Several workers (or nodes) poll side by side: a task is never held by two of them, a dead
worker's lease expires, and tasks past the deadline fail through the normal compare-and-set path."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from kling_gateway.domain.schedule import first_poll_delay, with_jitter
from kling_gateway.worker.poller import Poller
from tests.conftest import Env, both_databases

BODY = {"model_name": "kling-v1", "prompt": "x"}


database_url = both_databases


async def _create(env: Env, n: int) -> list[str]:
    return [(await env.create(BODY)).json()["data"]["task_id"] for _ in range(n)]


def _upstream_reads(env: Env) -> Counter[str]:
    return Counter(r.url.path.rsplit("/", 1)[-1] for r in env.upstream.sent if r.method == "GET")


async def test_two_workers_never_claim_the_same_task(env: Env) -> None:
    await _create(env, 12)
    env.clock.advance(1.0)
    a, b = Poller(env.gw, owner="a"), Poller(env.gw, owner="b")
    claimed_a, claimed_b = await asyncio.gather(
        env.gw.tasks.claim_due(env.gw.now_ms(), 100, "a", 30_000),
        env.gw.tasks.claim_due(env.gw.now_ms(), 100, "b", 30_000),
    )
    ids_a, ids_b = {t.id for t in claimed_a}, {t.id for t in claimed_b}
    assert not ids_a & ids_b
    assert len(ids_a | ids_b) == 12
    # while leased, nobody else gets them
    assert await env.gw.tasks.claim_due(env.gw.now_ms(), 100, "c", 30_000) == []
    # a worker that died holding leases: they expire, then others take over
    env.clock.advance(31)
    assert len(await a.gw.tasks.claim_due(env.gw.now_ms(), 100, "c", 30_000)) == 12
    del b


async def test_parallel_passes_read_each_task_once(env: Env) -> None:
    await _create(env, 10)
    env.clock.advance(1.0)
    counts = await asyncio.gather(
        Poller(env.gw, owner="a").run_once(), Poller(env.gw, owner="b").run_once()
    )
    assert sum(counts) == 10
    reads = _upstream_reads(env)
    assert len(reads) == 10 and set(reads.values()) == {1}


async def test_a_refreshed_task_is_released_for_its_next_look(env: Env) -> None:
    (task_id,) = await _create(env, 1)
    env.clock.advance(1.0)
    assert await Poller(env.gw).run_once() == 1
    record = await env.gw.tasks.get(task_id)
    assert record is not None and record.lease_until is None and record.lease_owner is None
    env.clock.advance(5)
    assert await Poller(env.gw).run_once() == 1


@pytest.mark.parametrize("settings_overrides", [{"task_timeout_seconds": 60}])
async def test_task_without_an_end_times_out_as_failed(env: Env) -> None:
    env.sim.config.processing_seconds = 10_000  # upstream never finishes
    (task_id,) = await _create(env, 1)
    await env.run_until_idle(30, step=2)
    assert (await env.get(task_id)).json()["data"]["task_status"] == "processing"
    await env.run_until_idle(40, step=2)
    got = (await env.get(task_id)).json()["data"]
    assert got["task_status"] == "failed"
    assert "did not finish within" in got["task_status_msg"]
    record = await env.gw.tasks.get(task_id)
    assert record is not None and record.next_poll_at is None


@pytest.mark.parametrize(
    ("delay", "jitter", "low", "high"),
    [(10.0, 0.0, 10.0, 10.0), (10.0, 0.1, 9.0, 10.0), (10.0, 0.5, 5.0, 10.0), (0.0, 0.5, 0.0, 0.0)],
)
def test_jitter_stays_in_its_band(delay: float, jitter: float, low: float, high: float) -> None:
    rng = random.Random(1)
    values = [with_jitter(delay, jitter, rng) for _ in range(500)]
    assert min(values) >= low and max(values) <= high
    if jitter and delay:
        assert len(set(values)) > 400  # actually spread


@pytest.mark.parametrize(
    ("duration", "mode", "scale", "floor", "expected"),
    [
        (5, "std", 12.0, 2.0, 60.0),
        (10, "std", 12.0, 2.0, 120.0),
        (5, "pro", 12.0, 2.0, 90.0),
        (5, "std", 0.0, 2.0, 2.0),  # simulator: the floor
        (5, "4k", 12.0, 2.0, 150.0),
    ],
)
def test_first_look_near_the_expected_render_time(
    duration: int, mode: str, scale: float, floor: float, expected: float
) -> None:
    got = first_poll_delay(
        duration, mode, scale=scale, floor=floor, rng=random.Random(0), jitter=0.0
    )
    assert got == pytest.approx(expected)
