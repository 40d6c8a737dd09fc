"""What every Kling route of the simulator does before its own work, shared by text2video's
handlers and the other kinds' so both answer alike."""

from __future__ import annotations

import asyncio

import orjson
from starlette.requests import Request

from .core import Simulator
from .envelope import SimFailure


async def begin(sim: Simulator, request: Request) -> str:
    """Injected latency, catch up on due transitions, authenticate; the caller's account."""
    sim.counters["requests"] += 1
    if sim.config.latency_seconds > 0:
        await asyncio.sleep(sim.config.latency_seconds)
    sim.advance()
    return sim.auth.authenticate(request.headers.get("authorization"))


def maybe_get_error(sim: Simulator) -> None:
    if sim.roll(sim.config.get_error_rate):
        sim.counters["get_errors_injected"] += 1
        raise SimFailure(5000)


async def json_body(request: Request) -> object:
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise SimFailure(1200, "request body is not valid JSON") from None


async def after_create(sim: Simulator) -> SimFailure | None:
    """Faults that strike once the task exists: a lost answer, or one that comes too late."""
    if sim.roll(sim.config.ambiguous_error_rate):
        sim.counters["ambiguous_injected"] += 1
        return SimFailure(5000)  # the task exists; only the answer is lost
    if sim.roll(sim.config.hang_rate):
        sim.counters["hangs_injected"] += 1
        await asyncio.sleep(sim.config.hang_seconds)  # the caller has normally timed out by now
    return None


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SimFailure(1201, f"{name} must be an integer") from None
    if not low <= value <= high:
        raise SimFailure(1201, f"{name} must be between {low} and {high}")
    return value


def page_params(request: Request) -> tuple[int, int]:
    return int_param(request, "pageNum", 1, 1, 1000), int_param(request, "pageSize", 30, 1, 500)
