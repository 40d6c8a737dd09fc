"""Operator money over HTTP: credits and debits with a note, balances, statements (JSON pages and CSV),
price multipliers, the price table and model aliases. The ledger moves through services/money.py's
``adjust`` and the aliases through services/admin.py, exactly as the CLI does; only the HTTP-shaped
views (pages, field-named errors) are new here."""

from __future__ import annotations

from typing import Any

from ..domain.pricing import PriceTable, from_micro, parse_amount
from ..errors import ConfigError
from ..storage.money import LedgerEntry
from ..storage.user_views import ledger_page
from . import admin, money
from .admin import AdminError, AdminNotFound
from .gateway import Gateway

KINDS = {"silent": (False, False), "sound": (True, False), "voice": (True, True)}
_KIND_OF = {v: k for k, v in KINDS.items()} | {(False, True): "voice"}


async def user_id(gw: Gateway, name: str) -> int:
    user = await gw.accounts.get_user(name)
    if user is None:
        raise AdminNotFound(f"no user named {name!r}")
    return user.id


async def adjust(gw: Gateway, name: str, amount: Any, note: Any, *, debit: bool) -> dict[str, Any]:
    """Credit or debit ``amount`` credits; a debit never takes the balance below 0 (429/1102)."""
    if isinstance(amount, bool) or not isinstance(amount, str | int | float):
        raise AdminError("amount: must be a number of credits (a string keeps it exact)")
    if note is not None and (not isinstance(note, str) or len(note) > 500):
        raise AdminError("note: must be a string of at most 500 characters")
    uid = await user_id(gw, name)
    try:
        left = await money.adjust(gw, uid, str(amount), debit=debit, note=note)
    except ConfigError as exc:
        raise AdminError(f"amount: {exc}".replace("amount: amount: ", "amount: ")) from None
    return {"user": name, "balance": from_micro(left), "currency": "credits"}


async def balance(gw: Gateway, name: str) -> dict[str, Any]:
    out = await money.balance(gw, await user_id(gw, name))
    return {"user": name, **out}


def entry_json(e: LedgerEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "created_at": e.created_at,
        "kind": e.kind,
        "reason": e.reason,
        "task_id": e.task_id,
        "key_id": e.key_id,
        "model_name": e.public_model,
        "amount": from_micro(e.amount_micro)
        if e.amount_micro >= 0
        else "-" + from_micro(-e.amount_micro),
        "charged": None if e.charged_micro is None else from_micro(e.charged_micro),
        "note": e.note,
    }


async def statement(gw: Gateway, name: str, page: int, size: int) -> dict[str, Any]:
    total, rows = await ledger_page(gw.engine, await user_id(gw, name), (page - 1) * size, size)
    items = [entry_json(LedgerEntry(**r._mapping)) for r in rows]
    return {"user": name, "page": page, "page_size": size, "total": total, "items": items}


async def statement_csv(gw: Gateway, name: str) -> str:
    return await money.statement_csv(gw, await user_id(gw, name))


async def set_multiplier(gw: Gateway, name: str, value: Any) -> dict[str, Any]:
    uid = await user_id(gw, name)
    parsed = _decimal("multiplier", value)
    await money.money_store(gw).set_multiplier(uid, parsed)
    gw.auth.forget()  # the multiplier travels with the cached key
    return {"user": name, "price_multiplier": parsed}


def _decimal(field: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise AdminError(f"{field}: must be a decimal number")
    try:
        return str(parse_amount(str(value), field))
    except ConfigError as exc:
        raise AdminError(str(exc)) from None


# --------------------------------------------------------------------------------------------- prices
def price_json(row: tuple[str, str, bool, bool, str]) -> dict[str, Any]:
    model, mode, sound, voice, price = row
    return {
        "model_name": model,
        "mode": mode,
        "kind": _KIND_OF[(sound, voice)],
        "credits_per_second": price,
    }


async def prices(gw: Gateway) -> list[dict[str, Any]]:
    return [price_json(r) for r in sorted(await money.money_store(gw).price_rows())]


async def set_price(gw: Gateway, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Set one row: ``model_name``, ``mode`` (``*`` = any), ``kind`` (silent|sound|voice), price."""
    model, mode, kind = (_text(body, f) for f in ("model_name", "mode", "kind"))
    if kind not in KINDS:
        raise AdminError("kind: must be silent, sound or voice")
    price = _decimal("credits_per_second", body.get("credits_per_second"))
    return await _change_prices(gw, {(model, mode, *KINDS[kind]): price})


async def delete_price(gw: Gateway, model: str, mode: str, kind: str) -> list[dict[str, Any]]:
    if kind not in KINDS:
        raise AdminError("kind: must be silent, sound or voice")
    return await _change_prices(gw, {(model, mode, *KINDS[kind]): None})


async def _change_prices(
    gw: Gateway, changes: dict[tuple[Any, ...], str | None]
) -> list[dict[str, Any]]:
    store = money.money_store(gw)
    current: dict[tuple[Any, ...], str] = {
        (m, md, s, v): p for m, md, s, v, p in await store.price_rows()
    }
    for key, price in changes.items():
        if price is None and key not in current:
            raise AdminNotFound(f"no price for {key[0]} {key[1]} {_KIND_OF[(key[2], key[3])]}")
        if price is None:
            del current[key]
        else:
            current[key] = price
    rows = [(*k, p) for k, p in current.items()]
    await store.replace_prices(rows, gw.now_ms())
    gw.prices = PriceTable.from_rows(rows)  # this process at once; the others on their next reload
    return [price_json(r) for r in sorted(rows)]


def _text(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not 1 <= len(value) <= 64:
        raise AdminError(f"{field}: is required (1–64 characters)")
    return value


# -------------------------------------------------------------------------------------------- aliases
async def models(gw: Gateway) -> list[dict[str, Any]]:
    routes = await gw.upstreams.routes()
    return [
        {"model_name": name, "target": target, "upstream_model": upstream, "alias": name in routes}
        for name, target, upstream in await admin.list_models(gw)
    ]


async def map_model(gw: Gateway, name: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    target = _text(body, "target")
    if not 1 <= len(name) <= 64:
        raise AdminError("model_name: must be 1–64 characters")
    await admin.map_model(gw, name, target)
    return await models(gw)


async def unmap_model(gw: Gateway, name: str) -> list[dict[str, Any]]:
    if name not in await gw.upstreams.routes():
        raise AdminNotFound(f"{name!r} has no route")
    await admin.unmap_model(gw, name)
    return await models(gw)
