"""``create_app(settings)``: the ASGI application. Its lifespan builds the Gateway (engine, migrations,
upstream clients) and, unless told not to, runs the refresher beside the server."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

import httpx
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from .. import __version__
from ..errors import KlingError
from ..mirror.service import Mirror, build_mirror
from ..observability.endpoint import install as install_observability
from ..services.gateway import Gateway, build_gateway
from ..settings import Settings
from ..worker.runner import run_all
from . import envelope
from .hot import HotRoutes
from .routes import admin, callbacks, health, kling, money, results, webhooks

DESCRIPTION = """Kling's own text2video API behind gateway keys.

Authenticate with `Authorization: Bearer sk-…` (a gateway key) or, exactly like Kling's official
clients, with an HS256 JWT signed by your gateway secret key (`iss` = your access key).
Every answer is Kling's envelope `{code, message, request_id, data}`; task ids are the gateway's own.
"""


class _Holder:
    gw: Gateway | None = None
    mirror: Mirror | None = None

    def get(self) -> Gateway:
        if self.gw is None:
            raise KlingError("gateway is starting", code=5001)
        return self.gw

    def get_mirror(self) -> Mirror:
        if self.mirror is None:
            raise KlingError("gateway is starting", code=5001)
        return self.mirror


def create_app(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] = time.time,
    run_poller: bool = True,
    gateway: Gateway | None = None,
) -> FastAPI:
    """``gateway``: one already built (``serve`` builds it to bootstrap before listening, and building a
    second costs start-up time); the app's lifespan takes it over and closes it at the end."""
    holder = _Holder()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gw = gateway or await build_gateway(settings, transport=transport, clock=clock)
        holder.gw = gw
        app.state.gateway = gw
        mirror = holder.mirror = build_mirror(settings)
        stop = asyncio.Event()
        poller_task = asyncio.create_task(run_all(gw, stop, mirror)) if run_poller else None
        try:
            yield
        finally:
            stop.set()
            if poller_task is not None:
                await poller_task
            await mirror.aclose()
            await gw.aclose()

    app = FastAPI(
        title="kling-gateway",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    # Innermost of our layers: request ids, metrics and access logs wrap the hot routes as they wrap FastAPI.
    kling_routes = kling.router(holder.get)
    app.add_middleware(HotRoutes, gateway=holder.get, routes=lambda: kling_routes.routes)
    app.add_middleware(envelope.RequestIdMiddleware)
    install_observability(app, holder.get)  # metrics + access log (outermost), GET /metrics
    app.add_exception_handler(KlingError, envelope.on_kling_error)
    app.add_exception_handler(HTTPException, envelope.on_http_error)
    app.add_exception_handler(RequestValidationError, envelope.on_validation_error)
    app.add_exception_handler(Exception, envelope.on_unexpected)
    app.include_router(money.router(holder.get))  # before kling: its POST …/quote must win over …/{task_id}
    app.include_router(kling_routes)
    app.include_router(health.router(holder.get))
    app.include_router(admin.router(holder.get))
    app.include_router(callbacks.router(holder.get))
    app.include_router(webhooks.router(holder.get))
    app.include_router(results.router(holder.get, holder.get_mirror))
    return app
