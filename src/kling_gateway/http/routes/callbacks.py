"""Where Kling calls back (``services/inbound.py``). Kept off the OpenAPI page: it is Kling's, not a
client's, and answers every failed check like an unknown path."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from starlette.responses import Response

from ...services import inbound
from ...services.gateway import Gateway
from ..envelope import ok, read_body

MAX_CALLBACK_BYTES = 256 * 1024


def router(gateway: Callable[[], Gateway]) -> APIRouter:
    api = APIRouter(include_in_schema=False)

    @api.post(inbound.CALLBACK_PATH + "/{task_id}/{token}")
    async def kling_callback(request: Request, task_id: str, token: str) -> Response:
        gw = gateway()
        body = await read_body(request, MAX_CALLBACK_BYTES)
        await gw.inbound.receive(task_id, token, body, request.headers)
        return ok(request, None)

    return api
