"""Operator use cases for upstream accounts ("channels"), shared by the CLI and ``/admin/v1/channels``.

Every change is written to the database and then re-read by this process at once (other processes pick it
up on their next reload, within ``KGW_CHANNEL_RELOAD_SECONDS``). Secrets go in once and never come back
out: views carry a masked hint per key.
"""

from __future__ import annotations

import re
import time
from typing import Any

from sqlalchemy.exc import IntegrityError

from ..domain.shape import storable
from ..upstream.client import UpstreamError
from .admin import AdminError, AdminNotFound
from .channels import Channel, mask
from .gateway import Gateway

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise AdminError(f"name: {name!r} must be 1-64 letters, digits, '_', '.' or '-'")


def _check_url(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise AdminError(f"base_url: {url!r} must start with http:// or https://")
    return url.rstrip("/")


def _credentials(
    access_key: str | None, secret_key: str | None, api_key: str | None
) -> tuple[str | None, ...]:
    if (access_key is None) != (secret_key is None):
        raise AdminError("credentials: give both access_key and secret_key, or an api_key")
    if access_key is None and api_key is None:
        raise AdminError("credentials: give access_key + secret_key or api_key")
    return access_key, secret_key, api_key


def _check_fields(gw: Gateway, fields: dict[str, Any]) -> dict[str, Any]:
    known = set(gw.catalog.table.names())
    out = dict(fields)
    if "base_url" in out:
        out["base_url"] = _check_url(str(out["base_url"]))
    for name in ("priority", "weight"):
        if name in out and (not isinstance(out[name], int) or isinstance(out[name], bool)):
            raise AdminError(f"{name}: must be an integer")
    if "weight" in out and not 0 <= out["weight"] <= 10_000:
        raise AdminError("weight: must be between 0 and 10000")
    if "enabled" in out and not isinstance(out["enabled"], bool):
        raise AdminError("enabled: must be true or false")
    models = out.get("models")
    if models is not None:
        if (
            not isinstance(models, list)
            or not all(isinstance(m, str) for m in models)
            or not models
        ):
            raise AdminError(
                "models: must be a non-empty list of upstream model names (or null for all)"
            )
        unknown = sorted(set(models) - known)
        if unknown:
            raise AdminError(f"models: unknown upstream model(s) {', '.join(unknown)}")
    model_map = out.get("model_map")
    if model_map is not None:
        if not isinstance(model_map, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in model_map.items()
        ):
            raise AdminError(
                "model_map: must map upstream model names to this account's model names"
            )
        unknown = sorted(set(model_map) - known)
        if unknown:
            raise AdminError(f"model_map: unknown upstream model(s) {', '.join(unknown)}")
    caps = out.get("caps")
    if caps is not None:
        if not isinstance(caps, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in caps.values()
        ):
            raise AdminError('caps: must map model names (or "*") to a whole number of tasks >= 1')
        unknown = sorted(set(caps) - known - {"*"})
        if unknown:
            raise AdminError(f"caps: unknown upstream model(s) {', '.join(unknown)}")
    return out


async def add(
    gw: Gateway,
    name: str,
    base_url: str,
    *,
    access_key: str | None = None,
    secret_key: str | None = None,
    api_key: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    _check_name(name)
    creds = _credentials(access_key, secret_key, api_key)
    checked = _check_fields(gw, {"base_url": base_url, **fields})
    now = gw.now_ms()
    try:
        account_id = await gw.upstreams.create_account(
            name=name, base_url=checked.pop("base_url"), now_ms=now, **checked
        )
    except IntegrityError:
        raise AdminError(f"name: an upstream account named {name!r} exists already") from None
    await _store_key(gw, account_id, creds, now)
    return await show(gw, name)


async def update(gw: Gateway, name: str, **fields: Any) -> dict[str, Any]:
    checked = _check_fields(gw, fields)
    if not storable(name) or not await gw.upstreams.update_account(name, **checked):
        raise AdminNotFound(f"no upstream account named {name!r}")
    if (
        checked.get("enabled") is True
    ):  # enabling is the operator's "try it again": lift any cooldown
        await gw.upstream.reload()
        await gw.upstream.cool(_channel(gw, name), None, None)
    return await show(gw, name)


async def add_key(
    gw: Gateway,
    name: str,
    *,
    access_key: str | None = None,
    secret_key: str | None = None,
    api_key: str | None = None,
) -> dict[str, Any]:
    account_id = await _account_id(gw, name)
    await _store_key(gw, account_id, _credentials(access_key, secret_key, api_key), gw.now_ms())
    return await show(gw, name)


async def remove_key(gw: Gateway, name: str, key_id: int) -> dict[str, Any]:
    account_id = await _account_id(gw, name)
    if not await gw.upstreams.remove_key(account_id, key_id):
        raise AdminNotFound(f"upstream account {name!r} has no key {key_id}")
    return await show(gw, name)


async def probe(gw: Gateway, name: str) -> dict[str, Any]:
    """Probe one account now and record the result (the worker does it every KGW_CHANNEL_PROBE_SECONDS)."""
    await gw.upstream.reload()
    await probe_channel(gw, _channel(gw, name))
    return await show(gw, name)


async def probe_channel(gw: Gateway, channel: Channel) -> str | None:
    """The error in words, or ``None`` when the account answered; a success ends an unreachable spell."""
    started = time.perf_counter()
    error: str | None = None
    try:
        await channel.probe()
    except UpstreamError as exc:
        error = f"{exc.code}: {exc.message}"[:300]
    latency = int((time.perf_counter() - started) * 1000)
    if error is None:
        channel.local_cooldown_until, channel.local_reason = 0, None
    await gw.upstreams.record_probe(channel.account_id, gw.now_ms(), latency, error)
    return error


async def show(gw: Gateway, name: str) -> dict[str, Any]:
    for view in await describe(gw):
        if view["name"] == name:
            return view
    raise AdminNotFound(f"no upstream account named {name!r}")


async def describe(gw: Gateway) -> list[dict[str, Any]]:
    """Every account with its configuration, state and figures: in flight (all nodes, from the tasks),
    last probe (all nodes), calls, errors and average latency (this process)."""
    await gw.upstream.reload()
    in_flight = await gw.upstreams.in_flight()
    now = gw.now_ms()
    out = []
    for channel in gw.upstream.all():
        acc = channel.account
        stats = channel.stats
        out.append(
            {
                "id": acc.id,
                "name": acc.name,
                "base_url": acc.base_url,
                "enabled": acc.enabled,
                "state": channel.unavailable(now) or channel.benched(now) or "ok",
                "priority": acc.priority,
                "weight": acc.weight,
                "models": list(acc.models) if acc.models is not None else None,
                "model_map": acc.model_map,
                "caps": acc.caps,
                "cooldown_until": acc.cooldown_until if (acc.cooldown_until or 0) > now else None,
                "cooldown_reason": acc.cooldown_reason if (acc.cooldown_until or 0) > now else None,
                "keys": [
                    {
                        "id": k.id,
                        "hint": k.hint,
                        "enabled": k.enabled,
                        "cooldown_until": k.cooldown_until if k.cooldown_until > now else None,
                        "cooldown_reason": k.cooldown_reason if k.cooldown_until > now else None,
                    }
                    for k in channel.keys
                ],
                "in_flight": in_flight.get(acc.id, 0),
                "probe": {
                    "at": acc.probed_at,
                    "latency_ms": acc.probe_ms,
                    "error": acc.probe_error,
                },
                "calls": stats.calls,
                "errors": stats.errors,
                "latency_ms": round(stats.ewma_ms, 1),
                "last_error": stats.last_error,
            }
        )
    return out


async def _store_key(
    gw: Gateway, account_id: int, creds: tuple[str | None, ...], now_ms: int
) -> None:
    ak, sk, api = creds
    await gw.upstreams.add_key(
        account_id,
        access_key_enc=gw.box.encrypt(ak) if ak else None,
        secret_key_enc=gw.box.encrypt(sk) if sk else None,
        api_key_enc=gw.box.encrypt(api) if api else None,
        hint=mask(ak or api or ""),
        now_ms=now_ms,
    )


async def _account_id(gw: Gateway, name: str) -> int:
    found = await gw.upstreams.account_id(name) if storable(name) else None
    if found is None:
        raise AdminNotFound(f"no upstream account named {name!r}")
    return found


def _channel(gw: Gateway, name: str) -> Channel:
    for channel in gw.upstream.all():
        if channel.name == name:
            return channel
    raise AdminNotFound(f"no upstream account named {name!r}")
