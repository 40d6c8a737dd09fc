"""Upstream Kling accounts ("channels"), their keys, and the public→upstream model
routes: operator data.

Secrets arrive here already encrypted (services own the master key); nothing in this
module decrypts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Table, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from .tables import model_routes, upstream_accounts, upstream_keys
from .task_sql import IN_FLIGHT

__all__ = ["IN_FLIGHT", "UpstreamAccount", "UpstreamKey", "UpstreamStore"]


@dataclass(frozen=True, slots=True)
class UpstreamKey:
    id: int
    account_id: int
    access_key_enc: str | None
    secret_key_enc: str | None
    api_key_enc: str | None
    hint: str
    enabled: bool
    cooldown_until: int | None
    cooldown_reason: str | None


@dataclass(frozen=True, slots=True)
class UpstreamAccount:
    id: int
    name: str
    base_url: str
    enabled: bool
    priority: int = 0
    weight: int = 1
    models: tuple[str, ...] | None = None  # None = offers every model
    model_map: dict[str, str] | None = None
    caps: dict[str, int] | None = None  # model or "*" → max tasks in flight
    cooldown_until: int | None = None
    cooldown_reason: str | None = None
    probed_at: int | None = None
    probe_ms: int | None = None
    probe_error: str | None = None
    keys: tuple[UpstreamKey, ...] = ()


# Fields an operator may change on an account; JSON ones are stored encoded.
_JSON_FIELDS = {"models": "models_json", "model_map": "model_map_json", "caps": "caps_json"}
EDITABLE = frozenset({"base_url", "enabled", "priority", "weight", *_JSON_FIELDS})


def _encode(changes: dict[str, Any]) -> dict[str, Any]:
    unknown = set(changes) - EDITABLE
    if unknown:
        raise ValueError(f"not editable: {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {}
    for name, value in changes.items():
        column = _JSON_FIELDS.get(name)
        if column is None:
            out[name] = value
        else:
            out[column] = None if value is None else orjson.dumps(value).decode()
    return out


def _decode(raw: str | None) -> Any:
    return None if raw is None else orjson.loads(raw)


class UpstreamStore:
    __slots__ = ("_engine",)

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create_account(self, *, name: str, base_url: str, now_ms: int, **fields: Any) -> int:
        """Raises ``sqlalchemy.exc.IntegrityError`` when the name is taken."""
        values = {"enabled": True, **_encode(fields)}
        async with self._engine.begin() as conn:
            res = await conn.execute(
                upstream_accounts.insert()
                .values(name=name, base_url=base_url, created_at=now_ms, **values)
                .returning(upstream_accounts.c.id)
            )
            return int(res.scalar_one())

    async def update_account(self, name: str, **fields: Any) -> bool:
        if not fields:
            return await self.account_id(name) is not None
        async with self._engine.begin() as conn:
            res = await conn.execute(
                update(upstream_accounts)
                .where(upstream_accounts.c.name == name)
                .values(**_encode(fields))
            )
        return res.rowcount > 0

    async def account_id(self, name: str) -> int | None:
        async with self._engine.connect() as conn:
            found = await conn.scalar(
                select(upstream_accounts.c.id).where(upstream_accounts.c.name == name)
            )
        return int(found) if found is not None else None

    async def upsert_account(
        self,
        *,
        name: str,
        base_url: str,
        now_ms: int,
        key: tuple[str | None, ...] | None = None,
        hint: str = "",
        enable: bool | None = None,
    ) -> int:
        """The account configured from settings: kept in step with them on every start. ``key``
        (encrypted access, secret, api key) becomes the account's only key when given.

        Every node seeds its account at start, so on a fresh database two may both
        find none and both insert: the loser's unique violation means the row now
        exists, and its second pass updates it."""
        try:
            return await self._upsert(name, base_url, now_ms, key, hint, enable)
        except IntegrityError:
            return await self._upsert(name, base_url, now_ms, key, hint, enable)

    async def _upsert(
        self,
        name: str,
        base_url: str,
        now_ms: int,
        key: tuple[str | None, ...] | None,
        hint: str,
        enable: bool | None,
    ) -> int:
        async with self._engine.begin() as conn:
            found = await conn.scalar(
                select(upstream_accounts.c.id).where(upstream_accounts.c.name == name)
            )
            values: dict[str, Any] = {"base_url": base_url}
            if enable is not None:
                values["enabled"] = enable
            if found is None:
                res = await conn.execute(
                    upstream_accounts.insert()
                    .values(name=name, created_at=now_ms, **{"enabled": True, **values})
                    .returning(upstream_accounts.c.id)
                )
                account_id = int(res.scalar_one())
            else:
                account_id = int(found)
                await conn.execute(
                    update(upstream_accounts)
                    .where(upstream_accounts.c.id == account_id)
                    .values(**values)
                )
            if key is not None:
                await conn.execute(
                    delete(upstream_keys).where(upstream_keys.c.account_id == account_id)
                )
                await conn.execute(
                    upstream_keys.insert().values(
                        account_id=account_id,
                        access_key_enc=key[0],
                        secret_key_enc=key[1],
                        api_key_enc=key[2],
                        hint=hint,
                        enabled=True,
                        created_at=now_ms,
                    )
                )
            return account_id

    async def add_key(
        self,
        account_id: int,
        *,
        access_key_enc: str | None,
        secret_key_enc: str | None,
        api_key_enc: str | None,
        hint: str,
        now_ms: int,
    ) -> int:
        async with self._engine.begin() as conn:
            res = await conn.execute(
                upstream_keys.insert()
                .values(
                    account_id=account_id,
                    access_key_enc=access_key_enc,
                    secret_key_enc=secret_key_enc,
                    api_key_enc=api_key_enc,
                    hint=hint,
                    enabled=True,
                    created_at=now_ms,
                )
                .returning(upstream_keys.c.id)
            )
            return int(res.scalar_one())

    async def remove_key(self, account_id: int, key_id: int) -> bool:
        async with self._engine.begin() as conn:
            res = await conn.execute(
                delete(upstream_keys).where(
                    upstream_keys.c.id == key_id, upstream_keys.c.account_id == account_id
                )
            )
        return res.rowcount > 0

    async def set_cooldown(self, account_id: int, until: int | None, reason: str | None) -> None:
        await self._set(upstream_accounts, account_id, cooldown_until=until, cooldown_reason=reason)

    async def set_key_cooldown(self, key_id: int, until: int | None, reason: str | None) -> None:
        await self._set(upstream_keys, key_id, cooldown_until=until, cooldown_reason=reason)

    async def _set(self, table: Table, row_id: int, **values: Any) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(update(table).where(table.c.id == row_id).values(**values))

    async def claim_probe(self, account_id: int, now_ms: int, every_ms: int) -> bool:
        """Compare-and-set on ``probed_at``: of several nodes, one probes an account
        per interval."""
        due = now_ms - every_ms
        # a read first: an UPDATE would take SQLite's write lock
        async with self._engine.connect() as conn:
            last = await conn.scalar(
                select(upstream_accounts.c.probed_at).where(upstream_accounts.c.id == account_id)
            )
        if last is not None and last > due:
            return False
        async with self._engine.begin() as conn:
            res = await conn.execute(
                update(upstream_accounts)
                .where(
                    upstream_accounts.c.id == account_id,
                    (upstream_accounts.c.probed_at.is_(None))
                    | (upstream_accounts.c.probed_at <= due),
                )
                .values(probed_at=now_ms)
            )
        return res.rowcount == 1

    async def record_probe(
        self, account_id: int, at_ms: int, latency_ms: int, error: str | None
    ) -> None:
        await self._set(
            upstream_accounts, account_id, probed_at=at_ms, probe_ms=latency_ms, probe_error=error
        )

    async def accounts(self) -> list[UpstreamAccount]:
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(select(upstream_accounts).order_by(upstream_accounts.c.id))
            ).all()
            key_rows = (
                await conn.execute(select(upstream_keys).order_by(upstream_keys.c.id))
            ).all()
        keys: dict[int, list[UpstreamKey]] = {}
        for k in key_rows:
            keys.setdefault(k.account_id, []).append(
                UpstreamKey(
                    k.id,
                    k.account_id,
                    k.access_key_enc,
                    k.secret_key_enc,
                    k.api_key_enc,
                    k.hint,
                    bool(k.enabled),
                    k.cooldown_until,
                    k.cooldown_reason,
                )
            )
        out = []
        for r in rows:
            models = _decode(r.models_json)
            out.append(
                UpstreamAccount(
                    id=r.id,
                    name=r.name,
                    base_url=r.base_url,
                    enabled=bool(r.enabled),
                    priority=r.priority,
                    weight=r.weight,
                    models=tuple(models) if models is not None else None,
                    model_map=_decode(r.model_map_json),
                    caps=_decode(r.caps_json),
                    cooldown_until=r.cooldown_until,
                    cooldown_reason=r.cooldown_reason,
                    probed_at=r.probed_at,
                    probe_ms=r.probe_ms,
                    probe_error=r.probe_error,
                    keys=tuple(keys.get(r.id, ())),
                )
            )
        return out

    async def in_flight(self) -> dict[int, int]:
        """Unfinished tasks per account (the operator's figure)."""
        async with self._engine.connect() as conn:
            return {int(a): int(n) for a, n in (await conn.execute(IN_FLIGHT)).all()}

    async def routes(self) -> dict[str, str]:
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(select(model_routes.c.public_name, model_routes.c.target))
            ).all()
        return {r.public_name: r.target for r in rows}

    async def set_route(self, public_name: str, target: str, now_ms: int) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(model_routes).where(model_routes.c.public_name == public_name)
            )
            await conn.execute(
                model_routes.insert().values(
                    public_name=public_name, target=target, created_at=now_ms
                )
            )

    async def delete_route(self, public_name: str) -> bool:
        async with self._engine.begin() as conn:
            res = await conn.execute(
                delete(model_routes).where(model_routes.c.public_name == public_name)
            )
        return res.rowcount > 0
