"""HTTP face of the simulator: Kling's legacy text2video routes plus ``/__sim/*`` admin routes.

Plain Starlette routes with orjson bodies and no middleware, because benchmarks compare the gateway
against this app and its own overhead must stay negligible.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .config import DEFAULT_PUBLIC_BASE_URL, SimulatorConfig, apply_patch, config_to_json
from .core import Simulator
from .envelope import SimFailure, fail, ok
from .mp4 import tiny_mp4
from .validation import validate_create

_DAY_MS = 24 * 3600 * 1000


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
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


class _Handlers:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    async def _begin(self, request: Request) -> str:
        """Shared prologue: injected latency, catch up on due transitions, authenticate."""
        sim = self.sim
        sim.counters["requests"] += 1
        if sim.config.latency_seconds > 0:
            await asyncio.sleep(sim.config.latency_seconds)
        sim.advance()
        return sim.auth.authenticate(request.headers.get("authorization"))

    def _maybe_get_error(self) -> None:
        if self.sim.roll(self.sim.config.get_error_rate):
            self.sim.counters["get_errors_injected"] += 1
            raise SimFailure(5000)

    async def create(self, request: Request) -> Response:
        sim = self.sim
        try:
            account = await self._begin(request)
            try:
                body = orjson.loads(await request.body())
            except orjson.JSONDecodeError:
                raise SimFailure(1200, "request body is not valid JSON") from None
            spec = validate_create(body, allow_4k=sim.config.allow_4k_mode)
            task = sim.create_task(account, spec)
        except SimFailure as failure:
            return fail(failure)
        if sim.roll(sim.config.ambiguous_error_rate):
            sim.counters["ambiguous_injected"] += 1
            return fail(SimFailure(5000))  # the task exists; only the answer is lost
        if sim.roll(sim.config.hang_rate):
            sim.counters["hangs_injected"] += 1
            await asyncio.sleep(sim.config.hang_seconds)  # the caller has normally timed out by now
        return ok(task.create_view())

    async def query(self, request: Request) -> Response:
        try:
            account = await self._begin(request)
            self._maybe_get_error()
            task = self.sim.store.find(account, request.path_params["task_id"])
            if task is None:
                raise SimFailure(1203, "task does not exist")
        except SimFailure as failure:
            return fail(failure)
        return ok(task.wire())

    async def list_tasks(self, request: Request) -> Response:
        try:
            account = await self._begin(request)
            self._maybe_get_error()
            page_num = _int_param(request, "pageNum", 1, 1, 1000)
            page_size = _int_param(request, "pageSize", 30, 1, 500)
        except SimFailure as failure:
            return fail(failure)
        return ok([task.wire() for task in self.sim.store.page(account, page_num, page_size)])

    async def costs(self, request: Request) -> Response:
        """Kling's resource-pack report (kling-api.md §7): one pack, drained by finished tasks."""
        sim = self.sim
        try:
            account = await self._begin(request)
            start = _int_param(request, "start_time", -1, 0, 2**63 - 1)
            end = _int_param(request, "end_time", -1, 0, 2**63 - 1)
            if start < 0 or end < 0:
                raise SimFailure(1201, "start_time and end_time are required")
        except SimFailure as failure:
            return fail(failure)
        purchased = int(sim.started_at * 1000) - _DAY_MS
        total = sim.config.resource_pack_units
        remaining = max(0.0, total - sim.store.units_used[account])
        pack = {
            "resource_pack_name": "Video Generation Pack (simulator)",
            "resource_pack_id": "sim-pack-0001",
            "resource_pack_type": "decreasing_total",
            "total_quantity": total,
            "remaining_quantity": round(remaining, 3),
            "purchase_time": purchased,
            "effective_time": purchased,
            "invalid_time": purchased + 365 * _DAY_MS,
            "status": "online" if remaining > 0 else "runOut",
        }
        wanted = request.query_params.get("resource_pack_name")
        packs = (
            [pack]
            if start <= purchased <= end and wanted in (None, pack["resource_pack_name"])
            else []
        )
        return ok({"code": 0, "msg": "", "resource_pack_subscribe_infos": packs})

    async def video(self, request: Request) -> Response:
        if not self.sim.video_available(request.path_params["video_id"]):
            return Response(b"not found", status_code=404, media_type="text/plain")
        return Response(tiny_mp4(), media_type="video/mp4")

    # --- admin -----------------------------------------------------------------------------------
    async def admin_config(self, request: Request) -> Response:
        sim = self.sim
        if request.method == "POST":
            try:
                patch = orjson.loads(await request.body())
                if not isinstance(patch, dict):
                    raise ValueError("config patch must be a JSON object")
                apply_patch(sim.config, patch)
            except ValueError as exc:  # orjson.JSONDecodeError is a ValueError
                return fail(SimFailure(1201, str(exc)))
            if "seed" in patch:
                sim.rng.seed(sim.config.seed)
        return ok(config_to_json(sim.config))

    async def admin_stats(self, request: Request) -> Response:
        return ok(self.sim.stats())

    async def admin_reset(self, request: Request) -> Response:
        self.sim.reset()
        return ok(self.sim.stats())


async def _not_found(request: Request, exc: Exception) -> Response:
    return fail(SimFailure(1203, "requested resource does not exist"))


async def _bad_method(request: Request, exc: Exception) -> Response:
    return fail(SimFailure(1202, "invalid request method"))


def create_simulator_app(
    config: SimulatorConfig | None = None,
    *,
    clock: Callable[[], float] = time.time,
    callback_client: httpx.AsyncClient | None = None,
) -> Starlette:
    """Build the app; ``app.state.sim`` is its ``Simulator``.

    Callbacks and timed transitions run only while the lifespan is active (uvicorn does that; with
    ``httpx.ASGITransport`` enter ``app.router.lifespan_context(app)`` or ``await sim.start()``).
    Reads never need the timer: every request first catches up with the clock.
    A ``callback_client`` passed in is used as is and left open for its owner to close.
    """
    sim = Simulator(config or SimulatorConfig(), clock, callback_client)
    h = _Handlers(sim)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await sim.start()
        try:
            yield
        finally:
            await sim.stop()

    routes = [
        Route("/v1/videos/text2video", h.create, methods=["POST"]),
        Route("/v1/videos/text2video", h.list_tasks, methods=["GET"]),
        Route("/v1/videos/text2video/{task_id}", h.query, methods=["GET"]),
        Route("/account/costs", h.costs, methods=["GET"]),
        Route("/results/{video_id}.mp4", h.video, methods=["GET"]),
        Route("/__sim/config", h.admin_config, methods=["GET", "POST"]),
        Route("/__sim/stats", h.admin_stats, methods=["GET"]),
        Route("/__sim/reset", h.admin_reset, methods=["POST"]),
    ]
    handlers: dict[Any, Callable[[Request, Exception], Any]] = {404: _not_found, 405: _bad_method}
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)
    app.state.sim = sim
    return app


def get_simulator(app: Starlette) -> Simulator:
    """Typed access to ``app.state.sim`` for callers running under mypy --strict."""
    sim = app.state.sim
    assert isinstance(sim, Simulator)
    return sim


def run_simulator(host: str, port: int, config: SimulatorConfig) -> None:
    """Serve the simulator with uvicorn (the gateway CLI's ``simulator`` command lands here)."""
    import uvicorn

    if config.public_base_url == DEFAULT_PUBLIC_BASE_URL:
        # Result URLs must point at where we actually listen; a wildcard bind is
        # reachable on loopback.
        reachable = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        config = dataclasses.replace(config, public_base_url=f"http://{reachable}:{port}")
    uvicorn.run(
        create_simulator_app(config), host=host, port=port, access_log=False, log_level="warning"
    )
