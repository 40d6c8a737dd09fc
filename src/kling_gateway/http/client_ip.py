"""ASGI layer: the client's address in ``services.client_address.CLIENT_IP`` for a request."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from ..services.client_address import CLIENT_IP


class ClientIpMiddleware:
    __slots__ = ("_app",)

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        token = CLIENT_IP.set(client[0] if client else None)
        try:
            await self._app(scope, receive, send)
        finally:
            CLIENT_IP.reset(token)
