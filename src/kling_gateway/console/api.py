"""The console's one seam to the gateway: every page reads and writes through these functions, which call
the same service functions as the admin API (in process, no HTTP). When an admin API operation lands,
re-point the function here; the pages do not change. Errors come back as ``ApiError`` naming the form
field they belong to, with the service's own message (the API's validation, word for word)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..domain.pricing import from_micro
from ..errors import ConfigError, KlingError
from ..mirror.service import public_videos
from ..services import admin, channel_admin, money, webhooks
from ..services.gateway import Gateway
from ..storage.accounts import KeyRecord, User
from ..storage.console_reads import DAY_MS, ConsoleReads, TaskFilter, TaskRow
from ..storage.money import LedgerEntry
from . import figures


class ApiError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


async def _call(field: str, work: Any) -> Any:
    try:
        return await work
    except (admin.AdminError, ConfigError, KlingError) as exc:
        raise ApiError(field, str(exc).removeprefix("error: ")) from None


# ------------------------------------------------------------------------------------------- overview
@dataclass(frozen=True, slots=True)
class Overview:
    days: int
    counts: dict[str, int]
    success_rate: float | None
    render_p: dict[int, float | None]  # percentile -> seconds
    day_labels: list[str]
    tasks_per_day: list[int]
    spend_per_day: list[str]  # credits, exact decimals


async def overview(gw: Gateway, days: int = 14) -> Overview:
    reads = ConsoleReads(gw.engine)
    now = gw.now_ms()
    since = (now // DAY_MS - days + 1) * DAY_MS
    counts = await reads.status_counts(since)
    renders = await reads.render_ms(since)
    first_day = since // DAY_MS
    return Overview(
        days=days,
        counts=counts,
        success_rate=figures.success_rate(counts),
        render_p={p: figures.percentile(renders, p) for p in (50, 90, 99)},
        day_labels=figures.day_labels(first_day, days),
        tasks_per_day=figures.series(await reads.tasks_per_day(since), first_day, days),
        spend_per_day=[
            from_micro(v) for v in figures.series(await reads.spend_per_day(since), first_day, days)
        ],
    )


# ---------------------------------------------------------------------------------------------- tasks
async def user_id(gw: Gateway, name: str) -> int:
    user = await gw.accounts.get_user(name)
    if user is None:
        raise ApiError("user", f"no user named {name!r}")
    return user.id


async def tasks(gw: Gateway, f: TaskFilter, offset: int, limit: int) -> list[TaskRow]:
    return await ConsoleReads(gw.engine).task_page(f, offset, limit)


@dataclass(frozen=True, slots=True)
class TaskDetail:
    row: TaskRow
    account: str | None
    videos: list[dict[str, Any]]
    deliveries: list[webhooks.LogEntry]


async def task(gw: Gateway, task_id: str, base_url: str) -> TaskDetail | None:
    record = await gw.tasks.get(task_id)
    if record is None:
        return None
    name = await ConsoleReads(gw.engine).user_name(record.user_id) or str(record.user_id)
    accounts = {a.id: a.name for a in await gw.upstreams.accounts()}
    videos = public_videos(gw, record, base_url) if record.status == "succeed" else None
    return TaskDetail(
        row=TaskRow(record, name),
        account=accounts.get(record.upstream_account_id or -1),
        videos=videos or [],
        deliveries=await webhooks.delivery_log(gw, task_id),
    )


async def redeliver(gw: Gateway, delivery_id: str) -> None:
    await _call("delivery", webhooks.redeliver(gw, delivery_id))


# ------------------------------------------------------------------------------------ users and keys
async def users(gw: Gateway) -> list[tuple[User, str]]:
    store = money.money_store(gw)
    return [(u, from_micro(await store.balance(u.id))) for u in await gw.accounts.list_users()]


async def create_user(gw: Gateway, name: str) -> User:
    return await _call("name", admin.create_user(gw, name))  # type: ignore[no-any-return]


async def set_user_disabled(gw: Gateway, name: str, disabled: bool) -> None:
    if not await gw.accounts.set_user_disabled(name, disabled):
        raise ApiError("user", f"no user named {name!r}")
    gw.auth.forget()


async def keys(gw: Gateway) -> list[KeyRecord]:
    return await admin.list_keys(gw)


async def issue_key(
    gw: Gateway, user: str, *, name: str, aksk: bool, models: list[str], expires_days: float | None
) -> admin.IssuedKey:
    work = admin.create_key(
        gw, user, name=name, aksk=aksk, models=models or None, expires_days=expires_days
    )
    return await _call("models" if models else "user", work)  # type: ignore[no-any-return]


async def revoke_key(gw: Gateway, key_id: int) -> None:
    await _call("key", admin.revoke_key(gw, key_id))


# ---------------------------------------------------------------------------------------------- money
async def adjust(gw: Gateway, user: str, amount: str, *, debit: bool, note: str | None) -> str:
    uid = await user_id(gw, user)
    left = await _call("amount", money.adjust(gw, uid, amount, debit=debit, note=note))
    return from_micro(left)


async def balance(gw: Gateway, user: str) -> str:
    return from_micro(await money.money_store(gw).balance(await user_id(gw, user)))


async def statement(gw: Gateway, user: str, limit: int = 200) -> list[LedgerEntry]:
    entries = await money.money_store(gw).entries(await user_id(gw, user))
    return list(reversed(entries))[:limit]


# ------------------------------------------------------------------------------------------- channels
async def channels(gw: Gateway) -> list[dict[str, Any]]:
    return await channel_admin.describe(gw)


async def add_channel(gw: Gateway, name: str, base_url: str, **creds: str | None) -> None:
    await _call("name", channel_admin.add(gw, name, base_url, **creds))


async def set_channel_enabled(gw: Gateway, name: str, enabled: bool) -> None:
    await _call("channel", channel_admin.update(gw, name, enabled=enabled))


async def probe_channel(gw: Gateway, name: str) -> None:
    await _call("channel", channel_admin.probe(gw, name))


# ------------------------------------------------------------------------------------ prices, models
async def prices(gw: Gateway) -> list[tuple[str, str, bool, bool, str]]:
    return sorted(await money.money_store(gw).price_rows())


async def set_price(gw: Gateway, model: str, mode: str, kind: str, credits: str) -> None:
    try:
        rows = money.parse_price_doc({model: {mode: {kind: credits}}}, "price")
    except ConfigError as exc:
        raise ApiError("credits", str(exc)) from None
    store = money.money_store(gw)
    current = {(m, md, s, v): p for m, md, s, v, p in await store.price_rows()}
    current.update({(m, md, s, v): p for m, md, s, v, p in rows})
    await store.replace_prices([(*k, p) for k, p in current.items()], gw.now_ms())
    await gw.refresh_catalog()


async def models(gw: Gateway) -> list[tuple[str, str, str]]:
    return await admin.list_models(gw)
