"""What things cost and what is left: quotes, balance, usage, and Kling's own ``/account/costs``
(real Kling clients call it at start; a 401 there breaks them)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from starlette.responses import Response

from ...errors import InvalidParameter
from ...services import money, tasks
from ...services.gateway import Gateway
from ..envelope import ok, read_body
from ..openapi import (
    BALANCE_RESPONSES,
    COSTS_RESPONSES,
    CREATE_OPENAPI,
    QUOTE_RESPONSES,
    SECURED,
    USAGE_RESPONSES,
    time_range,
)


def _ms(request: Request, name: str, default: int | None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 16:
        raise InvalidParameter(f"{name}: must be a Unix time in milliseconds (got {raw[:40]!r})")
    return int(raw)


def router(gateway: Callable[[], Gateway]) -> APIRouter:
    api = APIRouter(tags=["money"])

    async def quote(request: Request) -> Response:
        """The price of a text2video request, validated exactly like a create; no task is made."""
        gw = gateway()
        principal = await gw.auth.authenticate(request.headers.get("authorization"))
        req = gw.creation.validate(
            principal, tasks.parse_body(await read_body(request, gw.settings.max_body_bytes))
        )
        return ok(request, money.quote_answer(gw, principal, req))

    async def balance(request: Request) -> Response:
        """Credits left."""
        gw = gateway()
        principal = await gw.auth.authenticate(request.headers.get("authorization"))
        return ok(request, await money.balance(gw, principal.user_id))

    async def usage(request: Request) -> Response:
        """Credits by UTC day and model, for tasks finished between start_time and end_time (ms)."""
        gw = gateway()
        principal = await gw.auth.authenticate(request.headers.get("authorization"))
        since = _ms(request, "start_time", 0) or 0
        until = _ms(request, "end_time", None)
        return ok(request, await money.usage(gw, principal.user_id, since, until))

    async def account_costs(request: Request) -> Response:
        """Kling's resource-pack report, answered from the gateway balance."""
        gw = gateway()
        principal = await gw.auth.authenticate(request.headers.get("authorization"))
        start = _ms(request, "start_time", None)
        end = _ms(request, "end_time", None)
        if start is None or end is None:
            raise InvalidParameter("start_time and end_time are required (Unix ms)")
        return ok(request, await money.account_costs(gw, principal.user_id, start, end))

    for prefix in ("/kling/v1", "/v1"):
        documented = prefix == "/kling/v1"
        api.add_api_route(
            f"{prefix}/videos/text2video/quote",
            quote,
            methods=["POST"],
            summary="Price a text2video request",
            openapi_extra=CREATE_OPENAPI,
            responses=QUOTE_RESPONSES,
            include_in_schema=documented,
        )
        api.add_api_route(
            f"{prefix}/account/balance",
            balance,
            methods=["GET"],
            openapi_extra=SECURED,
            responses=BALANCE_RESPONSES,
            include_in_schema=documented,
        )
        api.add_api_route(
            f"{prefix}/account/usage",
            usage,
            methods=["GET"],
            openapi_extra=time_range(required=False),
            responses=USAGE_RESPONSES,
            include_in_schema=documented,
        )
    for path in ("/account/costs", "/kling/account/costs", "/kling/v1/account/costs"):
        api.add_api_route(
            path,
            account_costs,
            methods=["GET"],
            include_in_schema=path == "/account/costs",
            summary="Kling costs",
            openapi_extra=time_range(required=True),
            responses=COSTS_RESPONSES,
        )
    return api
