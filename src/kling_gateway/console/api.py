"""The console's one seam to the gateway: every page reads and writes through the operator services
that ``/admin/v1`` runs (services/*_admin.py, overview.py, webhooks.py), in process, with the same
JSON-shaped bodies and answers. A refusal comes back as ``ApiError`` naming the form field it
belongs to, with the admin API's own 400 message word for word."""

from __future__ import annotations

import re
from collections.abc import Awaitable
from typing import Any, TypeVar

from ..errors import KlingError
from ..services import channel_admin, money_admin, overview, tasks_admin, users_admin, webhooks
from ..services.admin import AdminError
from ..services.gateway import Gateway

T = TypeVar("T")
_FIELD = re.compile(r"([a-z_]+): ")
_MAX_USERS = 1000  # one page of the users list (the admin API pages them; the console shows one)


class ApiError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


async def call(default_field: str, work: Awaitable[T]) -> T:
    """``work``'s answer; its refusal as ``ApiError`` on the field the message names first
    ("weight: must be …"), else on ``default_field``."""
    try:
        return await work
    except (AdminError, KlingError) as exc:
        text = str(exc)
        found = _FIELD.match(text)
        raise ApiError(found.group(1) if found else default_field, text) from None


# ----------------------------------------------------------------------------------------- overview
async def figures(gw: Gateway, days: int = 14) -> dict[str, Any]:
    """GET /admin/v1/overview over ``days`` (the counts and render times over the same window)."""
    return await overview.overview(gw, days * 24, days)


# -------------------------------------------------------------------------------------------- tasks
async def tasks(gw: Gateway, query: dict[str, str]) -> dict[str, Any]:
    return await call("user", tasks_admin.search(gw, query))


async def task(gw: Gateway, ident: str, base_url: str, user: str | None = None) -> dict[str, Any]:
    return await call("task", tasks_admin.detail(gw, ident, user, base_url))


async def redeliver(gw: Gateway, delivery_id: str) -> None:
    await call("delivery", webhooks.redeliver(gw, delivery_id))


# ----------------------------------------------------------------------------------- users and keys
async def users(gw: Gateway) -> list[dict[str, Any]]:
    return await users_admin.users_page(gw, 0, _MAX_USERS)


async def user(gw: Gateway, name: str) -> dict[str, Any]:
    return await call("user", users_admin.show_user(gw, name))


async def create_user(gw: Gateway, name: str) -> dict[str, Any]:
    return await call("name", users_admin.create_user(gw, name))


async def update_user(gw: Gateway, name: str, body: dict[str, Any]) -> dict[str, Any]:
    return await call("user", users_admin.update_user(gw, name, body))


async def keys(gw: Gateway, user: str | None = None) -> list[dict[str, Any]]:
    return await call("user", users_admin.keys_of(gw, user))


async def key(gw: Gateway, key_id: int) -> dict[str, Any]:
    for k in await users_admin.keys_of(gw, None):
        if k["id"] == key_id:
            return k
    raise ApiError("key", f"no key with id {key_id}")


async def issue_key(gw: Gateway, user: str, body: dict[str, Any]) -> dict[str, Any]:
    return await call("user", users_admin.issue_key(gw, user, body))


async def update_key(gw: Gateway, key_id: int, body: dict[str, Any]) -> dict[str, Any]:
    return await call("key", users_admin.update_key(gw, key_id, body))


async def revoke_key(gw: Gateway, key_id: int) -> None:
    await call("key", users_admin.revoke_key(gw, key_id))


# -------------------------------------------------------------------------------------------- money
async def adjust(gw: Gateway, user: str, amount: str, note: str | None, *, debit: bool) -> None:
    await call("user", money_admin.adjust(gw, user, amount, note, debit=debit))


async def balance(gw: Gateway, user: str) -> dict[str, Any]:
    return await call("user", money_admin.balance(gw, user))


async def statement(gw: Gateway, user: str, page: int = 1, size: int = 200) -> dict[str, Any]:
    return await call("user", money_admin.statement(gw, user, page, size))


async def statement_csv(gw: Gateway, user: str) -> str:
    return await call("user", money_admin.statement_csv(gw, user))


async def set_multiplier(gw: Gateway, user: str, value: str) -> None:
    await call("multiplier", money_admin.set_multiplier(gw, user, value))


# ----------------------------------------------------------------------------------------- channels
async def channels(gw: Gateway) -> list[dict[str, Any]]:
    return await channel_admin.describe(gw)


async def add_channel(gw: Gateway, name: str, base_url: str, **creds: str | None) -> None:
    await call("name", channel_admin.add(gw, name, base_url, **creds))


async def update_channel(gw: Gateway, name: str, **fields: Any) -> None:
    await call("channel", channel_admin.update(gw, name, **fields))


async def probe_channel(gw: Gateway, name: str) -> None:
    await call("channel", channel_admin.probe(gw, name))


# ----------------------------------------------------------------------------------- prices, models
async def prices(gw: Gateway) -> list[dict[str, Any]]:
    return await money_admin.prices(gw)


async def set_price(gw: Gateway, body: dict[str, Any]) -> None:
    await call("credits_per_second", money_admin.set_price(gw, body))


async def delete_price(gw: Gateway, model: str, mode: str, kind: str) -> None:
    await call("price", money_admin.delete_price(gw, model, mode, kind))


async def models(gw: Gateway) -> list[dict[str, Any]]:
    return await money_admin.models(gw)


async def map_model(gw: Gateway, name: str, target: str) -> None:
    await call("target", money_admin.map_model(gw, name, {"target": target}))


async def unmap_model(gw: Gateway, name: str) -> None:
    await call("alias", money_admin.unmap_model(gw, name))
