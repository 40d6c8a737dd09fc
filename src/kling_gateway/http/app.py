"""``create_app(settings)``: the ASGI application. Its lifespan builds the Gateway (engine,
migrations, upstream clients) and, unless told not to, runs the refresher beside the server."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import __version__, console
from ..errors import KlingError
from ..mirror.service import Mirror, build_mirror
from ..observability.endpoint import install as install_observability
from ..observability.middleware import ObservabilityMiddleware
from ..services.gateway import Gateway, build_gateway
from ..settings import Settings
from ..worker.runner import run_all
from . import docs, envelope, methods, openapi
from .client_ip import ClientIpMiddleware
from .hot import HotRoutes
from .paths import EncodedNames
from .routes import (
    admin,
    admin_money,
    admin_tasks,
    admin_users,
    callbacks,
    health,
    kling,
    money,
    results,
    webhooks,
)

DESCRIPTION = """Kling's own text2video API behind gateway keys.

Authenticate with `Authorization: Bearer sk-…` (a gateway key) or, exactly like Kling's official
clients, with an HS256 JWT signed by your gateway secret key (`iss` = your access key).
Every answer is Kling's envelope `{code, message, request_id, data}`;
task ids are the gateway's own.
A method a path does not list is answered 405 with `Allow` and code 1202 (`MethodNotAllowed` below).
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


class GatewayApp(FastAPI):
    """FastAPI with our own layers in front of it rather than inside its middleware stack.

    HTTP requests enter ``front`` — access log and metrics, then the request id, then the hot routes
    (http/hot.py) — and only what the hot routes do not answer goes on into FastAPI. Why: inside the
    stack, every create and GET would first pass ``FastAPI.__call__``, ``Starlette.__call__``,
    ``ServerErrorMiddleware`` and FastAPI's exception telemetry layer, wasted work for routes that
    handle their own errors (docs/benchmarks.md). Behind the front FastAPI is unchanged, and its 500
    answers carry ``X-Request-Id`` too. Lifespan and websocket scopes go to FastAPI directly."""

    front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        front = self.front
        if front is not None and scope["type"] == "http":
            scope["app"] = self
            await front(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def behind_front(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)

    def openapi(self) -> dict[str, Any]:
        return openapi.finish(
            super().openapi()
        )  # idempotent: FastAPI caches the document it returns


def create_app(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] = time.time,
    run_poller: bool = True,
    gateway: Gateway | None = None,
) -> GatewayApp:
    """``gateway``: one already built (``serve`` builds it to bootstrap before listening, and
    building a second costs start-up time); the app's lifespan takes it over and closes it at the
    end."""
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

    app = GatewayApp(
        title="kling-gateway",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url=None,  # /openapi.json and /docs are http/docs.py's
        docs_url=None,
        redoc_url=None,
    )
    docs.install(app)
    # Request ids, metrics and access logs wrap the hot routes as they wrap FastAPI (GatewayApp).
    kling_routes = kling.router(holder.get)
    behind = EncodedNames(app.behind_front)  # names with '/' in /admin/v1 paths (http/paths.py)
    hot = HotRoutes(behind, gateway=holder.get, routes=lambda: kling_routes.routes)
    obs = install_observability(app, holder.get)  # GET /metrics
    front = envelope.RequestIdMiddleware(ClientIpMiddleware(hot))
    app.front = ObservabilityMiddleware(front, metrics=obs.http)
    app.add_exception_handler(KlingError, envelope.on_kling_error)
    app.add_exception_handler(HTTPException, methods.on_http_error)
    app.add_exception_handler(RequestValidationError, envelope.on_validation_error)
    app.add_exception_handler(Exception, envelope.on_unexpected)
    app.include_router(
        money.router(holder.get)
    )  # before kling: its POST …/quote must win over …/{task_id}
    app.include_router(kling_routes)
    app.include_router(health.router(holder.get))
    app.include_router(admin.router(holder.get))
    app.include_router(admin_users.router(holder.get))
    app.include_router(admin_money.router(holder.get))
    app.include_router(admin_tasks.router(holder.get))
    app.include_router(callbacks.router(holder.get))
    app.include_router(webhooks.router(holder.get))
    app.include_router(results.router(holder.get, holder.get_mirror))
    console.install(app, holder.get, holder.get_mirror)  # /console: the operator's web pages
    return app
