"""Operator API under ``/admin/v1``, guarded by ``KGW_ADMIN_TOKEN`` (off when unset). Same Kling
envelope and codes as the public routes; upstream ids and origin URLs are visible here and only
here. This module holds the channels and the shared checks; users and keys, money, tasks and the
overview have their own (admin_users.py, admin_money.py, admin_tasks.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from ...console.auth import Verdict, check_token
from ...domain.shape import check_body_shape
from ...errors import AuthError, BadRequest, InvalidParameter, NotFound
from ...services import admin, channel_admin
from ...services.gateway import Gateway
from .. import paths
from ..envelope import ok
from ..openapi import ADMIN_ONLY, ADMIN_RESPONSES

PREFIX = "/admin/v1"
T = TypeVar("T")
paths.register()  # ``{name:seg}``: a path parameter that may hold an encoded '/' (http/paths.py)


async def require_admin(gw: Gateway, request: Request) -> None:
    """``KGW_ADMIN_TOKEN`` when set, else the stored operator token (the console's), compared in
    constant time; with neither there is no admin API at all."""
    header = request.headers.get("authorization") or ""
    scheme, _, value = header.partition(" ")
    verdict = await check_token(gw, value.strip() if scheme.lower() == "bearer" else "")
    if verdict is Verdict.OFF:
        raise NotFound(
            "the admin API is off; set KGW_ADMIN_TOKEN or run `kling-gateway console token`"
        )
    if not header:
        raise AuthError("Authorization is empty", code=1001)
    if verdict is not Verdict.OK:
        raise AuthError("Authorization is invalid for the admin API", code=1002)


def router(gateway: Callable[[], Gateway]) -> APIRouter:
    api = APIRouter(prefix=PREFIX, tags=["admin"], responses=ADMIN_RESPONSES)

    @api.get(
        "/channels",
        openapi_extra=ADMIN_ONLY,
        summary="Upstream accounts with their state and figures (secrets masked)",
    )
    async def channels(request: Request) -> Response:
        gw = gateway()
        await require_admin(gw, request)
        return ok(request, await channel_admin.describe(gw))

    @api.post(
        "/channels", openapi_extra=ADMIN_ONLY, summary="Add an upstream account with its first key"
    )
    async def add_channel(request: Request) -> Response:
        gw = gateway()
        await require_admin(gw, request)
        body = await _object(request)
        name = _pop_str(body, "name", required=True)
        base_url = _pop_str(body, "base_url", required=True)
        creds = {k: _pop_str(body, k) for k in _CREDENTIALS}
        _only(body, _FIELDS)
        assert name is not None and base_url is not None
        return ok(request, await _admin(channel_admin.add(gw, name, base_url, **creds, **body)))

    @api.patch(
        "/channels/{name:seg}",
        openapi_extra=ADMIN_ONLY,
        summary="Change an account: priority, weight, models, caps, enabled…",
    )
    async def update_channel(request: Request, name: str) -> Response:
        gw = gateway()
        await require_admin(gw, request)
        body = await _object(request)
        _only(body, _FIELDS | {"base_url"})
        return ok(request, await _admin(channel_admin.update(gw, name, **body)))

    @api.post(
        "/channels/{name:seg}/keys",
        openapi_extra=ADMIN_ONLY,
        summary="Add a key to an account (traffic rotates over its keys)",
    )
    async def add_key(request: Request, name: str) -> Response:
        gw = gateway()
        await require_admin(gw, request)
        body = await _object(request)
        creds = {k: _pop_str(body, k) for k in _CREDENTIALS}
        _only(body, frozenset())
        return ok(request, await _admin(channel_admin.add_key(gw, name, **creds)))

    @api.delete(
        "/channels/{name:seg}/keys/{key_id}",
        openapi_extra=ADMIN_ONLY,
        summary="Remove one key of an account",
    )
    async def remove_key(request: Request, name: str, key_id: int) -> Response:
        gw = gateway()
        await require_admin(gw, request)
        return ok(request, await _admin(channel_admin.remove_key(gw, name, key_id)))

    @api.post(
        "/channels/{name:seg}/probe", openapi_extra=ADMIN_ONLY, summary="Probe an account now"
    )
    async def probe(request: Request, name: str) -> Response:
        gw = gateway()
        await require_admin(gw, request)
        return ok(request, await _admin(channel_admin.probe(gw, name)))

    return api


_CREDENTIALS = ("access_key", "secret_key", "api_key")
_MAX_LIMIT = 500


_FIELDS = frozenset({"priority", "weight", "models", "model_map", "caps", "enabled"})


async def _object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc.msg}") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    check_body_shape(body)  # names, URLs, credentials, model maps: no NUL, no deep nesting
    return body


def _pop_str(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.pop(name, None)
    if value is None:
        if required:
            raise InvalidParameter(f"{name}: is required")
        return None
    if not isinstance(value, str) or not value:
        raise InvalidParameter(f"{name}: must be a non-empty string")
    return value


def _only(body: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidParameter(
            f"{unknown[0]}: unknown field (allowed: {', '.join(sorted(allowed)) or 'none'})"
        )


async def _admin(work: Awaitable[T]) -> T:
    """Operator errors are the caller's: 404 for what is missing, else 400/1201 naming the field."""
    try:
        return await work
    except admin.AdminNotFound as exc:
        raise NotFound(str(exc)) from None
    except admin.AdminError as exc:
        raise InvalidParameter(str(exc)) from None
