"""Webhook routes: a user reads and rotates their signing secret and sees how their task's callbacks
went; the operator sees any task's delivery log and can send an event again. All in the Kling
envelope."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from starlette.responses import Response

from ...errors import InvalidParameter, NotFound
from ...services import webhooks
from ...services.admin import AdminError, AdminNotFound
from ...services.gateway import Gateway
from ..envelope import ok
from ..openapi import ADMIN_ONLY, ADMIN_RESPONSES, DELIVERIES_RESPONSES, SECRET_RESPONSES, SECURED
from .admin import PREFIX as ADMIN_PREFIX
from .admin import require_admin

USER_PREFIX = "/kling/v1"


def router(gateway: Callable[[], Gateway]) -> APIRouter:
    api = APIRouter()

    @api.get(
        f"{USER_PREFIX}/account/webhook-secret",
        tags=["webhooks"],
        summary="Your webhook signing secret",
        openapi_extra=SECURED,
        responses=SECRET_RESPONSES,
    )
    async def read_secret(request: Request) -> Response:
        """The Standard Webhooks secret (``whsec_…``) your callbacks are signed with; created on
        first read. Verify ``webhook-signature`` over ``{webhook-id}.{webhook-timestamp}.{body}``
        with it."""
        gw = gateway()
        principal = await gw.auth.authenticate(request.headers.get("authorization"))
        return ok(request, {"secret": await webhooks.user_secret(gw, principal.user_id)})

    @api.post(
        f"{USER_PREFIX}/account/webhook-secret/rotate",
        tags=["webhooks"],
        summary="Replace your webhook signing secret",
        openapi_extra=SECURED,
        responses=SECRET_RESPONSES,
    )
    async def rotate_secret(request: Request) -> Response:
        """A new secret, in force at once: callbacks sent from now on carry only its signature."""
        gw = gateway()
        principal = await gw.auth.authenticate(request.headers.get("authorization"))
        return ok(request, {"secret": await webhooks.rotate_secret(gw, principal.user_id)})

    @api.get(
        f"{USER_PREFIX}/videos/text2video/{{task_id}}/deliveries",
        tags=["webhooks"],
        summary="Callback deliveries of one of your tasks",
        openapi_extra=SECURED,
        responses=DELIVERIES_RESPONSES,
    )
    async def task_deliveries(request: Request, task_id: str) -> Response:
        """One entry per status event sent to your callback_url, with every attempt (time, HTTP
        status, latency, error). ``task_id`` is the gateway's id or your own external_task_id."""
        gw = gateway()
        principal = await gw.auth.authenticate(request.headers.get("authorization"))
        return ok(request, await webhooks.user_delivery_log(gw, principal, task_id))

    @api.get(
        f"{ADMIN_PREFIX}/tasks/{{task_id:seg}}/deliveries",
        tags=["admin"],
        summary="Callback deliveries of a task (payloads included)",
        openapi_extra=ADMIN_ONLY,
        responses=ADMIN_RESPONSES,
    )
    async def admin_task_deliveries(request: Request, task_id: str) -> Response:
        gw = gateway()
        await require_admin(gw, request)
        user = request.query_params.get("user")
        try:
            log = await webhooks.admin_delivery_log(gw, task_id, user)
        except AdminNotFound as exc:
            raise NotFound(str(exc)) from None
        except AdminError as exc:  # an external id of several users: the caller must name one
            raise InvalidParameter(str(exc)) from None
        return ok(request, [webhooks.entry_json(e, operator=True) for e in log])

    @api.post(
        f"{ADMIN_PREFIX}/deliveries/{{delivery_id:seg}}/redeliver",
        tags=["admin"],
        summary="Send a callback event again",
        openapi_extra=ADMIN_ONLY,
        responses=ADMIN_RESPONSES,
    )
    async def admin_redeliver(request: Request, delivery_id: str) -> Response:
        """Queue the event for the next worker pass (same webhook-id), even if sent or given up."""
        gw = gateway()
        await require_admin(gw, request)
        try:
            delivery = await webhooks.redeliver(gw, delivery_id)
        except AdminError as exc:
            raise NotFound(str(exc)) from None
        return ok(
            request,
            {
                "delivery_id": delivery.id,
                "task_id": delivery.task_id,
                "status": delivery.status,
                "next_attempt_at": delivery.next_attempt_at,
            },
        )

    return api
