"""``/admin/v1/users`` and ``/admin/v1/keys``: users (create, list with balance, key count and tasks
in flight, show, rename, disable/enable, limits) and their keys (issue ``sk-`` or AK/SK with the
secret shown once, list masked, revoke, expiry, model and IP allow-lists, limits)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from starlette.responses import Response

from ...domain.overrides import LIMIT_FIELDS
from ...services import users_admin
from ...services.gateway import Gateway
from .. import openapi_admin as A
from ..envelope import ok
from .admin import PREFIX
from .admin_common import call, guarded, object_with, page, query

_LIMITS = frozenset(LIMIT_FIELDS)
_USER_PATCH = frozenset({"name", "disabled"}) | _LIMITS
_KEY_SETTINGS = frozenset({"name", "expires_at", "models", "allowed_ips"}) | _LIMITS


def router(gateway: Callable[[], Gateway]) -> APIRouter:
    api = APIRouter(prefix=PREFIX, tags=["admin: users and keys"])

    @api.get(
        "/users",
        summary="Users with balance, key count, tasks in flight and limits",
        openapi_extra=A.op(params=A.PAGING),
        responses=A.answers(A.many(A.USER), "Users, oldest first"),
    )
    async def list_users(request: Request) -> Response:
        gw = await guarded(gateway, request)
        number, size = page(query(request), 100)
        return ok(request, await users_admin.users_page(gw, (number - 1) * size, size))

    @api.post(
        "/users",
        summary="Create a user",
        openapi_extra=A.op(A.USER_CREATE),
        responses=A.answers(A.USER, "The new user"),
    )
    async def create_user(request: Request) -> Response:
        gw = await guarded(gateway, request)
        body = await object_with(request, frozenset({"name"}))
        return ok(request, await call(users_admin.create_user(gw, body.get("name"))))

    @api.get(
        "/users/{name:seg}",
        summary="One user",
        openapi_extra=A.op(),
        responses=A.answers(A.USER, "The user"),
    )
    async def show_user(request: Request, name: str) -> Response:
        gw = await guarded(gateway, request)
        return ok(request, await call(users_admin.show_user(gw, name)))

    @api.patch(
        "/users/{name:seg}",
        summary="Rename, disable/enable, or set the user's limits (null = the KGW_ default)",
        openapi_extra=A.op(A.USER_PATCH),
        responses=A.answers(A.USER, "The user as changed"),
    )
    async def update_user(request: Request, name: str) -> Response:
        gw = await guarded(gateway, request)
        body = await object_with(request, _USER_PATCH)
        return ok(request, await call(users_admin.update_user(gw, name, body)))

    @api.get(
        "/users/{name:seg}/keys",
        summary="A user's keys (prefixes only; secrets are never shown again)",
        openapi_extra=A.op(),
        responses=A.answers(A.many(A.KEY), "The keys"),
    )
    async def user_keys(request: Request, name: str) -> Response:
        gw = await guarded(gateway, request)
        return ok(request, await call(users_admin.keys_of(gw, name)))

    @api.post(
        "/users/{name:seg}/keys",
        summary="Issue a key: `sk-…` or an AK/SK pair; the secret is in this answer only",
        openapi_extra=A.op(A.KEY_CREATE),
        responses=A.answers(A.KEY, "The key, with its secret (shown once)"),
    )
    async def issue_key(request: Request, name: str) -> Response:
        gw = await guarded(gateway, request)
        body = await object_with(request, _KEY_SETTINGS | {"kind"})
        return ok(request, await call(users_admin.issue_key(gw, name, body)))

    @api.get(
        "/keys",
        summary="Every key (prefixes only)",
        openapi_extra=A.op(),
        responses=A.answers(A.many(A.KEY), "The keys"),
    )
    async def all_keys(request: Request) -> Response:
        gw = await guarded(gateway, request)
        return ok(request, await call(users_admin.keys_of(gw, None)))

    @api.patch(
        "/keys/{key_id}",
        summary="Change a key: expiry, models, IP allow-list (CIDRs), limits, label, disabled",
        openapi_extra=A.op(A.KEY_PATCH),
        responses=A.answers(A.KEY, "The key as changed"),
    )
    async def update_key(request: Request, key_id: int) -> Response:
        gw = await guarded(gateway, request)
        body = await object_with(request, _KEY_SETTINGS | {"disabled"})
        return ok(request, await call(users_admin.update_key(gw, key_id, body)))

    @api.delete(
        "/keys/{key_id}",
        summary="Revoke a key (every process forgets it within KGW_KEY_CACHE_SECONDS)",
        openapi_extra=A.op(),
        responses=A.answers(A.KEY, "The key, now disabled"),
    )
    async def revoke_key(request: Request, key_id: int) -> Response:
        gw = await guarded(gateway, request)
        return ok(request, await call(users_admin.revoke_key(gw, key_id)))

    return api
