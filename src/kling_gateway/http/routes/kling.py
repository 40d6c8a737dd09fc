"""Kling's own text2video routes, served under ``/kling/v1`` and at the root ``/v1`` (some clients
drop any path from their base URL)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from starlette.responses import Response

from ...services import reads
from ...services.gateway import Gateway
from ..envelope import ok, read_body
from ..openapi import (
    CREATE_OPENAPI,
    CREATE_RESPONSES,
    LIST_OPENAPI,
    LIST_RESPONSES,
    SECURED,
    TASK_RESPONSES,
)

PREFIXES = ("/kling/v1", "/v1")


def router(gateway: Callable[[], Gateway]) -> APIRouter:
    api = APIRouter()

    async def create_task(request: Request) -> Response:
        """Create a text2video task: Kling's own body; the answer carries the gateway's task id."""
        gw = gateway()
        principal = await gw.auth.authenticate(request.headers.get("authorization"))
        raw = await read_body(request, gw.settings.max_body_bytes)
        return ok(request, await gw.creation.create(principal, raw))

    async def get_task(request: Request, task_id: str) -> Response:
        """One task by the gateway's task id or by your own external_task_id."""
        gw = gateway()
        principal = await gw.auth.authenticate(request.headers.get("authorization"))
        return ok(request, await reads.get(gw, principal, task_id, str(request.base_url)))

    async def list_tasks(request: Request) -> Response:
        """Your tasks, newest first, a page at a time."""
        gw = gateway()
        principal = await gw.auth.authenticate(request.headers.get("authorization"))
        q = request.query_params
        base = str(request.base_url)
        return ok(
            request, await reads.list_page(gw, principal, q.get("pageNum"), q.get("pageSize"), base)
        )

    for prefix in PREFIXES:
        documented = prefix == PREFIXES[0]
        base = f"{prefix}/videos/text2video"
        api.add_api_route(
            base,
            create_task,
            methods=["POST"],
            tags=["text2video"],
            summary="Create a text2video task",
            openapi_extra=CREATE_OPENAPI,
            responses=CREATE_RESPONSES,
            include_in_schema=documented,
        )
        api.add_api_route(
            base + "/{task_id}",
            get_task,
            methods=["GET"],
            tags=["text2video"],
            summary="Query a task",
            openapi_extra=SECURED,
            responses=TASK_RESPONSES,
            include_in_schema=documented,
        )
        api.add_api_route(
            base,
            list_tasks,
            methods=["GET"],
            tags=["text2video"],
            summary="List tasks",
            openapi_extra=LIST_OPENAPI,
            responses=LIST_RESPONSES,
            include_in_schema=documented,
        )
    return api
