"""Liveness and readiness; readiness checks the database, which the gateway cannot work without."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from ...services.gateway import Gateway
from ...storage.db import ping
from ..envelope import JSON, request_id
from ..openapi import HEALTHZ_RESPONSES, READYZ_RESPONSES


def router(gateway: Callable[[], Gateway]) -> APIRouter:
    api = APIRouter(tags=["health"])

    @api.get("/healthz", summary="The process is up", responses=HEALTHZ_RESPONSES)
    async def healthz(request: Request) -> Response:
        return Response(
            orjson.dumps({"status": "ok", "request_id": request_id(request)}), media_type=JSON
        )

    @api.get("/readyz", summary="The database is reachable", responses=READYZ_RESPONSES)
    async def readyz(request: Request) -> Response:
        ready = await ping(gateway().engine)
        body = {"status": "ready" if ready else "unavailable", "request_id": request_id(request)}
        return Response(orjson.dumps(body), status_code=200 if ready else 503, media_type=JSON)

    return api
