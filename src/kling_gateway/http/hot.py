"""The two routes every client calls all the time (create a task, read a task) on bare ASGI.

Why: under load FastAPI's route layer (exception and exit-stack middlewares, matching every route
of every included router, dependency solving, request and response objects) cost more CPU than the
whole GET it dispatches to (docs/benchmarks.md).

``HotRoutes`` sits inside ``ObservabilityMiddleware`` and ``RequestIdMiddleware`` (so request ids,
metrics, access logs and ``X-Request-Id`` are exactly as before) and in front of FastAPI — in front
of its whole middleware stack too (``GatewayApp`` in http/app.py). It answers only
``POST {prefix}/videos/text2video`` and ``GET {prefix}/videos/text2video/{task_id}``; anything else
— other methods, other paths, a ``root_path``, a task id with a slash — goes on to FastAPI
unchanged. The routes stay registered in FastAPI as well (OpenAPI, and the fallback), and the same
service functions answer.

Same wire behaviour as the FastAPI route, kept by construction and by the HTTP test suite:
``KlingError`` → its envelope and status (what ``envelope.on_kling_error`` does); any other
exception is logged and answered 500/5000 as the app's ``Exception`` handler does, then raised on to
the server, as ``ServerErrorMiddleware`` does; ``scope["route"]`` is the registered ``APIRoute``, so
metric labels are the route template.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import KlingError
from ..services import reads
from ..services.gateway import Gateway
from .edge import error_body, header, ok_body, read_body, request_id, send_json
from .envelope import unexpected

_BASE_URL_CACHE_LIMIT = 256
_COLLECTION = "/videos/text2video"


class HotRoutes:
    """Pure ASGI layer in front of FastAPI for create and get (see the module docstring)."""

    __slots__ = ("_app", "_base_urls", "_gateway", "_router_routes", "_routes")

    def __init__(
        self, app: ASGIApp, *, gateway: Callable[[], Gateway], routes: Callable[[], list[BaseRoute]]
    ) -> None:
        self._app = app
        self._gateway = gateway
        self._router_routes = routes
        self._routes: dict[tuple[str, str], BaseRoute] | None = None
        self._base_urls: dict[tuple[Any, ...], str] = {}

    def _route(self, method: str, template: str) -> BaseRoute | None:
        if self._routes is None:  # routes are all included once the first request arrives
            found: dict[tuple[str, str], BaseRoute] = {}
            for route in self._router_routes():
                path = getattr(route, "path", None)
                for m in getattr(route, "methods", None) or ():
                    found.setdefault((m, str(path)), route)
            self._routes = found
        return self._routes.get((method, template))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            path: str = scope["path"]
            method: str = scope["method"]
            if method == "POST" and path.endswith(_COLLECTION):
                route = self._route("POST", path)
                if route is not None:
                    await self._create(scope, receive, send, route)
                    return
            elif method == "GET" and _COLLECTION in path:
                base, _, ident = path.rpartition("/")
                if ident:
                    route = self._route("GET", base + "/{task_id}")
                    if route is not None:
                        await self._get(scope, send, route, ident)
                        return
        await self._app(scope, receive, send)

    async def _create(self, scope: Scope, receive: Receive, send: Send, route: BaseRoute) -> None:
        scope["route"] = route
        try:
            gw = self._gateway()
            principal = await gw.auth.authenticate(header(scope, b"authorization"))
            raw = await read_body(scope, receive, gw.settings.max_body_bytes)
            data = await gw.creation.create(principal, raw)
        except KlingError as exc:
            await self._error(scope, send, exc)
            return
        except Exception as exc:
            await self._crash(scope, send, exc)
            raise
        await self._ok(scope, send, data)

    async def _get(self, scope: Scope, send: Send, route: BaseRoute, ident: str) -> None:
        scope["route"] = route
        scope["path_params"] = {"task_id": ident}
        try:
            gw = self._gateway()
            principal = await gw.auth.authenticate(header(scope, b"authorization"))
            data = await reads.get(gw, principal, ident, self._base_url(scope))
        except KlingError as exc:
            await self._error(scope, send, exc)
            return
        except Exception as exc:
            await self._crash(scope, send, exc)
            raise
        await self._ok(scope, send, data)

    def _base_url(self, scope: Scope) -> str:
        """``str(request.base_url)`` per (scheme, host, server), cached: Starlette rebuilds it."""
        key = (scope.get("scheme"), header(scope, b"host"), scope.get("server"))
        url = self._base_urls.get(key)
        if url is None:
            if (
                len(self._base_urls) >= _BASE_URL_CACHE_LIMIT
            ):  # the Host header is the client's to choose
                self._base_urls.clear()
            url = self._base_urls[key] = str(Request(scope).base_url)
        return url

    @staticmethod
    async def _ok(scope: Scope, send: Send, data: dict[str, Any]) -> None:
        await send_json(send, 200, ok_body(scope, data))

    @classmethod
    async def _crash(cls, scope: Scope, send: Send, exc: Exception) -> None:
        """``envelope.on_unexpected`` on the raw channel: log with the request, answer 500/5000."""
        await cls._error(
            scope, send, unexpected(scope["method"], scope["path"], request_id(scope), exc)
        )

    @staticmethod
    async def _error(scope: Scope, send: Send, exc: KlingError) -> None:
        await send_json(send, exc.http_status, error_body(scope, exc))
