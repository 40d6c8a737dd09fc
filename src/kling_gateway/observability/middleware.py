"""Per request: one metrics observation and one JSON access-log line, from a pure ASGI middleware.

Pure ASGI for the same reason as ``RequestIdMiddleware``: ``BaseHTTPMiddleware`` runs the
app in another task and costs tens of microseconds per request. It sits outside
``RequestIdMiddleware`` and reads what the inner layers left in the shared scope once the
app returns: the request id (``state``), the matched route (``scope["route"]``, set by
the router, so the label is the template, not the path) and the public task id
(``state["task_id"]``, set by ``envelope.ok``). A request that raises is counted as a 500
— the server's error handler, outside this layer, answers it — and the exception goes on.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .context import CURRENT, RequestContext
from .logs import ACCESS_LOGGER
from .metrics import UNMATCHED_ROUTE, HttpMetrics, method_label

access_log = logging.getLogger(ACCESS_LOGGER)


def route_label(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        ctx = RequestContext(scope)
        token = CURRENT.set(ctx)
        try:
            await self.app(scope, receive, send_observed)
        finally:
            CURRENT.reset(token)
            elapsed = time.perf_counter() - started
            method = method_label(scope["method"])
            route = route_label(scope)
            self.metrics.observe(method, route, status, elapsed)
            if access_log.isEnabledFor(logging.INFO):
                fields: dict[str, Any] = {
                    "method": method,
                    "route": route,
                    "status": status,
                    "latency_ms": round(elapsed * 1000, 3),
                    "request_id": ctx.request_id,
                }
                task_id = ctx.task_id
                if task_id is not None:
                    fields["task_id"] = task_id
                if ctx.upstream_s:
                    fields["upstream_ms"] = round(ctx.upstream_s * 1000, 3)
                access_log.info("request", extra=fields)
