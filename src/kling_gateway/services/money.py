"""Money use cases off the task path: quotes, balances, usage, statements, operators' credits.
The reserve at create and the close at the end are services/ledger.py's.

Invariant (tested as a property): for every user, balance = sum of their ledger amounts; a
balance never goes below zero because every debit is a compare-and-set on ``balance ≥ amount``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from typing import Any

from ..domain.pricing import (
    MICRO,
    Quote,
    from_micro,
    parse_amount,
    price_conflict,
    to_micro,
)
from ..domain.request import Text2VideoRequest
from ..errors import ConfigError, InsufficientBalance
from ..storage.money import CLOSE, MoneyStore
from .auth import Principal
from .gateway import Gateway

# file_price_rows and parse_price_doc are prices.py's; kept reachable here, where callers know them
from .prices import file_price_rows as file_price_rows
from .prices import parse_price_doc as parse_price_doc

BILLING_OFF = "billing is off on this gateway (KGW_BILLING=false): tasks are not charged"


def quote_answer(gw: Gateway, principal: Principal, req: Text2VideoRequest) -> dict[str, Any]:
    """The quote route's data. With billing off nothing is priced or charged, and the answer says so
    rather than refusing an unpriced model (the create would go through uncharged)."""
    if gw.money is None:
        return quote_body(Quote(0, req.duration, 0), req, billing=False)
    return quote_body(gw.ledger.quote(principal, req), req)


def quote_body(q: Quote, req: Text2VideoRequest, *, billing: bool = True) -> dict[str, Any]:
    body = {
        "model_name": req.model_name,
        "mode": req.mode,
        "duration": str(req.duration),
        "sound": "on" if req.sound else "off",
        "voice_control": req.voice_control,
        "credits_per_second": from_micro(q.per_second_micro),
        "price": from_micro(q.reserve_micro),
        "billing": "on" if billing else "off",
    }
    if not billing:
        body["message"] = BILLING_OFF
    return body


# ----------------------------------------------------------------------------------------- read
# side
def money_store(gw: Gateway) -> MoneyStore:
    return MoneyStore(gw.engine)


async def balance(gw: Gateway, user_id: int) -> dict[str, Any]:
    micro = await money_store(gw).balance(user_id)
    return {"balance": from_micro(micro), "currency": "credits"}


def _day(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d")


async def usage(gw: Gateway, user_id: int, since_ms: int, until_ms: int | None) -> dict[str, Any]:
    """Charged credits of finished tasks by UTC day and model (settles; refunds charge nothing)."""
    rows: dict[tuple[str, str], list[int]] = {}
    for e in await money_store(gw).entries(user_id, since_ms, until_ms):
        if e.kind == CLOSE and e.charged_micro:
            bucket = rows.setdefault((_day(e.created_at), e.public_model or ""), [0, 0])
            bucket[0] += e.charged_micro
            bucket[1] += 1
    items = [
        {"day": day, "model_name": model, "tasks": n, "credits": from_micro(micro)}
        for (day, model), (micro, n) in sorted(rows.items())
    ]
    return {"total": from_micro(sum(i[0] for i in rows.values())), "items": items}


async def account_costs(gw: Gateway, user_id: int, start_ms: int, end_ms: int) -> dict[str, Any]:
    """Kling's ``GET /account/costs`` answered from the gateway balance as one resource pack."""
    store = money_store(gw)
    entries = await store.entries(user_id)
    credited = sum(e.amount_micro for e in entries if e.kind == "credit")
    remaining = await store.balance(user_id)
    first = entries[0].created_at if entries else gw.now_ms()
    pack = {
        "resource_pack_name": "kling-gateway credits",
        "resource_pack_id": f"gw-{user_id}",
        "resource_pack_type": "decreasing_total",
        "total_quantity": float(Decimal(credited) / MICRO),
        "remaining_quantity": float(Decimal(remaining) / MICRO),
        "purchase_time": first,
        "effective_time": first,
        "invalid_time": first + 10 * 365 * 86_400_000,
        "status": "online" if remaining > 0 else "runOut",
    }
    return {
        "code": 0,
        "msg": "",
        "resource_pack_subscribe_infos": [pack] if first <= end_ms else [],
    }


# ---------------------------------------------------------------------------------------- operators
async def adjust(gw: Gateway, user_id: int, amount: str, *, debit: bool, note: str | None) -> int:
    micro = to_micro(parse_amount(amount))
    if micro == 0:
        raise ConfigError("amount must be more than 0")
    assert gw.money is not None
    signed = -micro if debit else micro
    done = await gw.money.adjust(
        user_id=user_id,
        amount=signed,
        reason="debit" if debit else "credit",
        note=note,
        now_ms=gw.now_ms(),
    )
    if not done:
        raise InsufficientBalance(
            f"Account balance not enough to debit {from_micro(micro)} credits"
        )
    return await money_store(gw).balance(user_id)


async def set_price(gw: Gateway, model: str, mode: str, kind: str, credits_per_second: str) -> bool:
    """Store one price row (``prices set``); False when ``model`` is not offered yet (the price
    waits for its route). A row no task of the model can be billed at is refused, nothing stored."""
    ((name, mode, sound, voice, price),) = parse_price_doc(
        {model: {mode: {kind: credits_per_second}}}, "prices set"
    )
    await gw.refresh_catalog()
    resolved = gw.catalog.resolve(name)
    if resolved is not None and (rule := price_conflict(resolved[1], mode, sound, voice)):
        raise ConfigError(f"prices set {model} {mode} {kind}: no task can be billed at it: {rule}")
    store = money_store(gw)
    current = {(m, md, s, v): p for m, md, s, v, p in await store.price_rows()}
    current[(name, mode, sound, voice)] = price
    await store.replace_prices([(*key, p) for key, p in current.items()], gw.now_ms())
    return resolved is not None


async def statement_csv(gw: Gateway, user_id: int) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["id", "time_utc", "kind", "reason", "task_id", "model", "amount", "charged", "note"]
    )
    for e in await money_store(gw).entries(user_id):
        writer.writerow(
            [
                e.id,
                dt.datetime.fromtimestamp(e.created_at / 1000, dt.UTC).isoformat(
                    timespec="seconds"
                ),
                e.kind,
                e.reason,
                e.task_id or "",
                e.public_model or "",
                from_micro(e.amount_micro)
                if e.amount_micro >= 0
                else "-" + from_micro(-e.amount_micro),
                "" if e.charged_micro is None else from_micro(e.charged_micro),
                e.note or "",
            ]
        )
    return out.getvalue()
