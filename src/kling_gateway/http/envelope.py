"""Kling's response envelope and the request-id plumbing every response goes through."""

from __future__ import annotations

import itertools
import logging
import secrets
from collections.abc import Callable
from typing import Any

from fastapi import Request
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import KlingError
from . import edge

log = logging.getLogger("kling_gateway.http")
JSON = "application/json"


def request_ids() -> Callable[[], str]:
    """Request ids shaped like Kling's (a UUID's 8-4-4-4-12 hex groups): 80 random bits drawn once,
    then a 48-bit counter from a random start. Ids must be unique, not unguessable — nothing is
    authorised by one — and ``uuid4()`` would cost a system call and a UUID object on every
    request. Made per app, so every worker process of ``serve --workers N`` draws its own prefix."""
    p = secrets.token_hex(10)
    head = f"{p[:8]}-{p[8:12]}-{p[12:16]}-{p[16:]}-"
    counter = itertools.count(secrets.randbits(47))
    return lambda: f"{head}{next(counter) & 0xFFFFFFFFFFFF:012x}"


class RequestIdMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware task hop): mints the id, exposes it to handlers as
    ``request.state.request_id`` and stamps ``X-Request-Id`` on every response, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._mint = request_ids()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = self._mint()
        scope.setdefault("state", {})["request_id"] = rid
        header = (b"x-request-id", rid.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        await self.app(scope, receive, send_with_id)


def request_id(request: Request) -> str:
    return edge.request_id(request.scope)


def ok(request: Request, data: Any) -> Response:
    return Response(edge.ok_body(request.scope, data), media_type=JSON)


def error_response(request: Request, exc: KlingError) -> Response:
    return Response(
        edge.error_body(request.scope, exc), status_code=exc.http_status, media_type=JSON
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The body under ``limit`` (edge.read_body). The routes that call it take no body parameter, so
    nothing has read the body before."""
    return await edge.read_body(request.scope, request.receive, limit)


async def on_kling_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, KlingError)
    return error_response(request, exc)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        err = KlingError(
            f"invalid request method {request.method} for {request.url.path}", code=1202
        )
    elif exc.status_code == 404:
        err = KlingError(f"no such resource: {request.url.path}", code=1203)
    else:
        err = KlingError(str(exc.detail), code=1200 if exc.status_code < 500 else 5000)
    return error_response(request, err)


async def on_validation_error(request: Request, exc: Exception) -> Response:
    return error_response(request, KlingError("invalid request parameters", code=1200))


def unexpected(method: str, path: str, rid: str, exc: Exception) -> KlingError:
    """Log a bug that reached the edge, with its request; return what the client is told instead."""
    log.exception(
        "unhandled error on %s %s",
        method,
        path,
        exc_info=exc,
        extra={"request_id": rid},  # runs outside the middleware that knows the request
    )
    return KlingError("Server internal error", code=5000)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    return error_response(
        request, unexpected(request.method, request.url.path, request_id(request), exc)
    )
