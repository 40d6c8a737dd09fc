"""A method a known path does not take: HTTP 405 with ``Allow``, in Kling's envelope (code 1202).

Kling itself answers 1202 with HTTP 404; HTTP (RFC 9110 §15.5.6) and the OpenAPI document want 405
with the methods the path does take, and clients read the ``code`` either way. Starlette's own
``Allow`` lists only the first route that matched the path, so it is rebuilt here from every route
on it.
"""

from __future__ import annotations

from fastapi import Request
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match

from . import envelope

_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route fully matches on this path (HEAD comes with GET, as Starlette routes
    it). Asked of the routes themselves: FastAPI keeps included routers as routes of their own."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


async def on_http_error(request: Request, exc: Exception) -> Response:
    """``envelope.on_http_error``, with the status and ``Allow`` of a 405 put right."""
    response = await envelope.on_http_error(request, exc)
    if isinstance(exc, HTTPException) and exc.status_code == 405:
        response.status_code = 405
        response.headers["Allow"] = ", ".join(allowed_methods(request))
    return response
