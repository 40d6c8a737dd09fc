"""HTTP face of the simulator: Kling's legacy text2video routes, the other kinds' (kind_routes.py)
and ``/__sim/*`` admin routes.

Plain Starlette routes with orjson bodies and no middleware, because benchmarks compare the gateway
against this app and its own overhead must stay negligible.
"""

from __future__ import annotations

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
from .kind_routes import kind_routes
from .prologue import after_create, begin, int_param, json_body, maybe_get_error, page_params
from .store import TEXT2VIDEO
from .validation import validate_create

_DAY_MS = 24 * 3600 * 1000


class _Handlers:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    async def create(self, request: Request) -> Response:
        sim = self.sim
        try:
            account = await begin(sim, request)
            spec = validate_create(await json_body(request), allow_4k=sim.config.allow_4k_mode)
            task = sim.create_task(account, spec)
        except SimFailure as failure:
            return fail(failure)
        late = await after_create(sim)
        return fail(late) if late is not None else ok(task.create_view())

    async def query(self, request: Request) -> Response:
        try:
            account = await begin(self.sim, request)
            maybe_get_error(self.sim)
            task = self.sim.store.find(account, request.path_params["task_id"])
            if task is None or task.kind != TEXT2VIDEO:
                raise SimFailure(1203, "task does not exist")
        except SimFailure as failure:
            return fail(failure)
        return ok(task.wire())

    async def list_tasks(self, request: Request) -> Response:
        try:
            account = await begin(self.sim, request)
            maybe_get_error(self.sim)
            page_num, page_size = page_params(request)
        except SimFailure as failure:
            return fail(failure)
        return ok([task.wire() for task in self.sim.store.page(account, page_num, page_size)])

    async def costs(self, request: Request) -> Response:
        """Kling's resource-pack report (kling-api.md §7): one pack, drained by finished tasks."""
        sim = self.sim
        try:
            account = await begin(sim, request)
            start = int_param(request, "start_time", -1, 0, 2**63 - 1)
            end = int_param(request, "end_time", -1, 0, 2**63 - 1)
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
        task = self.sim.video_task(request.path_params["video_id"])
        if task is None:
            return Response(b"not found", status_code=404, media_type="text/plain")
        return Response(task.mp4(), media_type="video/mp4")

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
        *kind_routes(sim),  # last: text2video and result downloads match without trying them
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
