"""Operator API under ``/admin/v1``, guarded by ``KGW_ADMIN_TOKEN`` (off when unset). Same Kling envelope
and codes as the public routes; upstream ids and origin URLs are visible here and only here."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import asdict

from fastapi import APIRouter, Request
from starlette.responses import Response

from ...errors import AuthError, NotFound
from ...services import admin
from ...services.gateway import Gateway
from ..envelope import ok

PREFIX = "/admin/v1"


def require_admin(gw: Gateway, request: Request) -> None:
    token = gw.settings.admin_token
    if token is None:
        raise NotFound("the admin API is off; set KGW_ADMIN_TOKEN to enable it")
    header = request.headers.get("authorization") or ""
    if not header:
        raise AuthError("Authorization is empty", code=1001)
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip(), token.get_secret_value()):
        raise AuthError("Authorization is invalid for the admin API", code=1002)


def router(gateway: Callable[[], Gateway]) -> APIRouter:
    api = APIRouter(prefix=PREFIX, tags=["admin"])

    @api.get("/tasks/{task_id}", summary="A task as the operator sees it (upstream id included)")
    async def task(request: Request, task_id: str) -> Response:
        gw = gateway()
        require_admin(gw, request)
        try:
            record = await admin.show_task(gw, task_id)
        except admin.AdminError as exc:
            raise NotFound(str(exc)) from None
        return ok(request, asdict(record))

    return api
