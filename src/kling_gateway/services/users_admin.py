"""Operator use cases for users and their keys beyond what services/admin.py already does (the CLI's
create/issue/revoke are reused from there): listing with figures, renaming, enabling, key settings
(expiry, models, IP allow-list) and per-user/per-key limits. Every change to what authentication reads
drops this process's key cache at once; other processes see it within ``KGW_KEY_CACHE_SECONDS``."""

from __future__ import annotations

from typing import Any

import orjson

from ..domain.ipallow import parse_networks
from ..domain.overrides import overrides_json, parse_limits
from ..domain.pricing import from_micro
from ..storage.accounts import AlreadyExists, KeyRecord
from ..storage.user_limits import UserLimitStore
from ..storage.user_views import UserView, list_users, user_view
from . import admin
from .admin import AdminError, AdminNotFound
from .gateway import Gateway

_MAX_EXPIRY_MS = 9_999_999_999_999


def user_json(v: UserView) -> dict[str, Any]:
    return {
        "id": v.id,
        "name": v.name,
        "disabled": v.disabled,
        "created_at": v.created_at,
        "balance": from_micro(v.balance_micro),
        "price_multiplier": v.price_multiplier,
        "keys": v.keys,
        "in_flight": v.in_flight,
        "limits": overrides_json(v.limits),
    }


def key_json(k: KeyRecord) -> dict[str, Any]:
    """A key as the operator sees it again: its visible prefix only, never a secret."""
    return {
        "id": k.id,
        "user": k.user_name,
        "name": k.name,
        "kind": k.kind,
        "prefix": k.prefix,
        "access_key": k.access_key,
        "models": sorted(k.allowed_models) if k.allowed_models is not None else None,
        "allowed_ips": list(k.allowed_ips) if k.allowed_ips is not None else None,
        "expires_at": k.expires_at,
        "disabled": k.disabled,
        "created_at": k.created_at,
        "quota": from_micro(k.quota_micro) if k.quota_micro is not None else None,
        "spent": from_micro(k.spent_micro),
        "limits": overrides_json(k.key_limits),
    }


async def users_page(gw: Gateway, offset: int, limit: int) -> list[dict[str, Any]]:
    return [user_json(v) for v in await list_users(gw.engine, offset, limit)]


async def show_user(gw: Gateway, name: str) -> dict[str, Any]:
    return user_json(await _view(gw, name))


async def _view(gw: Gateway, name: str) -> UserView:
    found = await user_view(gw.engine, name)
    if found is None:
        raise AdminNotFound(f"no user named {name!r}")
    return found


async def update_user(gw: Gateway, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """``body``: any of ``name`` (rename), ``disabled``, and the limit fields (null = the default)."""
    view = await _view(gw, name)
    values = _limits(body)
    if "name" in body:
        values["name"] = _user_name(body["name"])
    if "disabled" in body:
        values["disabled"] = _bool("disabled", body["disabled"])
    if values:
        try:
            await UserLimitStore(gw.engine).update_user(view.id, values)
        except AlreadyExists as exc:
            raise AdminError(f"name: {exc}") from None
        gw.auth.forget()
    return user_json(await _view(gw, values.get("name", name)))


async def create_user(gw: Gateway, name: Any) -> dict[str, Any]:
    try:
        user = await admin.create_user(gw, _user_name(name))
    except AdminError as exc:
        raise AdminError(f"name: {exc}") from None
    return user_json(await _view(gw, user.name))


async def issue_key(gw: Gateway, user_name: str, body: dict[str, Any]) -> dict[str, Any]:
    """A new key (``kind``: ``sk`` or ``aksk``); its secret is in this answer and never again."""
    await _view(gw, user_name)
    kind = body.pop("kind", "sk")
    if kind not in ("sk", "aksk"):
        raise AdminError("kind: must be 'sk' or 'aksk'")
    label = body.pop("name", "")
    if not isinstance(label, str) or len(label) > 64:
        raise AdminError("name: must be a string of at most 64 characters")
    settings = _key_values(gw, body)  # validated before anything is stored
    issued = await admin.create_key(gw, user_name, name=label, aksk=kind == "aksk")
    if settings:
        await UserLimitStore(gw.engine).update_key(issued.id, settings)
    out = key_json(await _key(gw, issued.id))
    out.update(api_key=issued.api_key, secret_key=issued.secret_key)
    return out


async def update_key(gw: Gateway, key_id: int, body: dict[str, Any]) -> dict[str, Any]:
    """``body``: any of ``name``, ``expires_at`` (Unix ms), ``models``, ``allowed_ips``, ``disabled``
    and the limit fields; null clears one (no expiry, every model, any address, the default)."""
    await _key(gw, key_id)
    values = _key_values(gw, body)
    if "name" in body:
        if not isinstance(body["name"], str) or len(body["name"]) > 64:
            raise AdminError("name: must be a string of at most 64 characters")
        values["name"] = body["name"]
    if "disabled" in body:
        values["disabled"] = _bool("disabled", body["disabled"])
    if values:
        await UserLimitStore(gw.engine).update_key(key_id, values)
        gw.auth.forget()
    return key_json(await _key(gw, key_id))


async def revoke_key(gw: Gateway, key_id: int) -> dict[str, Any]:
    await _key(gw, key_id)
    await admin.revoke_key(gw, key_id)
    return key_json(await _key(gw, key_id))


async def keys_of(gw: Gateway, user_name: str | None) -> list[dict[str, Any]]:
    if user_name is not None:
        await _view(gw, user_name)
    return [key_json(k) for k in await admin.list_keys(gw, user_name)]


async def _key(gw: Gateway, key_id: int) -> KeyRecord:
    for k in await gw.accounts.list_keys():  # operators' keys: hundreds at most
        if k.id == key_id:
            return k
    raise AdminNotFound(f"no key with id {key_id}")


def _key_values(gw: Gateway, body: dict[str, Any]) -> dict[str, Any]:
    values = _limits(body)
    if "expires_at" in body:
        at = body["expires_at"]
        ok = at is None or (
            isinstance(at, int) and not isinstance(at, bool) and 0 < at <= _MAX_EXPIRY_MS
        )
        if not ok:
            raise AdminError("expires_at: must be Unix time in milliseconds, or null for no expiry")
        values["expires_at"] = at
    if "models" in body:
        values["allowed_models"] = _models(gw, body["models"])
    if "allowed_ips" in body:
        ips = body["allowed_ips"]
        if ips is not None and not isinstance(ips, list):
            raise AdminError("allowed_ips: must be a list of addresses or CIDRs, or null for any")
        try:
            values["allowed_ips"] = (
                None if ips is None else orjson.dumps(parse_networks(ips)).decode()
            )
        except ValueError as exc:
            raise AdminError(str(exc)) from None
    return values


def _models(gw: Gateway, models: Any) -> str | None:
    if models is None:
        return None
    if not isinstance(models, list) or not models or not all(isinstance(m, str) for m in models):
        raise AdminError("models: must be a non-empty list of model names, or null for every model")
    unknown = [m for m in models if gw.catalog.resolve(m) is None]
    if unknown:
        raise AdminError(f"models: unknown model(s): {', '.join(unknown)}")
    return orjson.dumps(sorted(set(models))).decode()


def _limits(body: dict[str, Any]) -> dict[str, Any]:
    try:
        return parse_limits(body)
    except ValueError as exc:
        raise AdminError(str(exc)) from None


def _user_name(name: Any) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= 64 or name != name.strip():
        raise AdminError("name: must be 1–64 characters, without leading or trailing spaces")
    return name


def _bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise AdminError(f"{field}: must be true or false")
    return value
