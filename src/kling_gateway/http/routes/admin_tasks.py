"""``/admin/v1/tasks`` and ``/admin/v1/overview``: task search (status, user, model, kind, time
range, paging, the client's ``external_task_id``), one task in full, and the overview figures.
Deliveries and redelivery are http/routes/webhooks.py's."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from starlette.responses import Response

from ...errors import InvalidParameter
from ...mirror.service import base_url_for
from ...services import overview, tasks_admin
from ...services.gateway import Gateway
from .. import openapi_admin as A
from ..envelope import ok
from .admin import PREFIX
from .admin_common import call, guarded, query


def router(gateway: Callable[[], Gateway]) -> APIRouter:
    api = APIRouter(prefix=PREFIX, tags=["admin: tasks and overview"])

    @api.get(
        "/tasks",
        summary="Search tasks, newest first",
        openapi_extra=A.op(params=A.TASK_QUERY),
        responses=A.answers(A.TASK_PAGE, "One page of tasks"),
    )
    async def search(request: Request) -> Response:
        gw = await guarded(gateway, request)
        return ok(request, await call(tasks_admin.search(gw, query(request))))

    @api.get(
        "/tasks/{task_id:seg}",
        summary="A task in full: request, cost, upstream account and id, callback attempts",
        openapi_extra=A.op(
            params=[
                A.param(
                    "user", {"type": "string"}, "With it, task_id is this user's external_task_id"
                )
            ]
        ),
        responses=A.answers(A.TASK_DETAIL, "The task"),
    )
    async def task(request: Request, task_id: str) -> Response:
        gw = await guarded(gateway, request)
        q = query(request)
        if set(q) - {"user"}:
            raise InvalidParameter(
                f"{sorted(set(q) - {'user'})[0]}: unknown parameter (allowed: user)"
            )
        base = base_url_for(gw.settings, str(request.base_url))
        return ok(request, await call(tasks_admin.detail(gw, task_id, q.get("user"), base)))

    @api.get(
        "/overview",
        summary="Tasks per status, success rate, render-time percentiles, tasks and spend per day, "
        "accounts' health",
        openapi_extra=A.op(params=A.OVERVIEW_QUERY),
        responses=A.answers(A.OVERVIEW, "The figures"),
    )
    async def figures(request: Request) -> Response:
        gw = await guarded(gateway, request)
        hours, days = await call(_window(query(request)))
        return ok(request, await overview.overview(gw, hours, days))

    return api


async def _window(q: dict[str, str]) -> tuple[int, int]:
    return overview.parse_window(q)
