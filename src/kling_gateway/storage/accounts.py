"""Users and their gateway keys (``sk-…`` bearer keys and Kling-style access/secret pairs)."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from ..domain.overrides import Overrides, overrides_from_row
from .tables import api_keys, users


class AlreadyExists(Exception):
    pass


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    disabled: bool
    created_at: int


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: int
    user_id: int
    user_name: str
    name: str
    kind: str
    prefix: str
    access_key: str | None
    secret_enc: str | None
    allowed_models: frozenset[str] | None
    expires_at: int | None
    disabled: bool  # the key's own flag OR its user's
    created_at: int
    price_multiplier: str = "1"
    quota_micro: int | None = None
    spent_micro: int = 0
    # Migration 0009: the user's and the key's own limits (None = the defaults), and the key's
    # CIDRs.
    user_limits: Overrides | None = None
    key_limits: Overrides | None = None
    allowed_ips: tuple[str, ...] | None = None


_LIMIT_NAMES = ("max_in_flight", "rate_per_second", "rate_burst", "daily_spend_micro")
_KEY_COLUMNS = (
    api_keys.c.id,
    api_keys.c.user_id,
    users.c.name.label("user_name"),
    api_keys.c.name,
    api_keys.c.kind,
    api_keys.c.prefix,
    api_keys.c.access_key,
    api_keys.c.secret_enc,
    api_keys.c.allowed_models,
    api_keys.c.expires_at,
    (api_keys.c.disabled | users.c.disabled).label("disabled"),
    api_keys.c.created_at,
    users.c.price_multiplier,
    api_keys.c.quota_micro,
    api_keys.c.spent_micro,
    *(users.c[n].label(f"u_{n}") for n in _LIMIT_NAMES),
    *(api_keys.c[n].label(f"k_{n}") for n in _LIMIT_NAMES),
    api_keys.c.allowed_ips,
)
_KEY_SELECT = select(*_KEY_COLUMNS).join(users, users.c.id == api_keys.c.user_id)


def _key(row: object) -> KeyRecord:
    m = row._mapping  # type: ignore[attr-defined]
    models = m["allowed_models"]
    return KeyRecord(
        id=m["id"],
        user_id=m["user_id"],
        user_name=m["user_name"],
        name=m["name"],
        kind=m["kind"],
        prefix=m["prefix"],
        access_key=m["access_key"],
        secret_enc=m["secret_enc"],
        allowed_models=frozenset(orjson.loads(models)) if models else None,
        expires_at=m["expires_at"],
        disabled=bool(m["disabled"]),
        created_at=m["created_at"],
        price_multiplier=m["price_multiplier"],
        quota_micro=m["quota_micro"],
        spent_micro=m["spent_micro"],
        user_limits=overrides_from_row(row, "u_"),
        key_limits=overrides_from_row(row, "k_"),
        allowed_ips=tuple(orjson.loads(m["allowed_ips"])) if m["allowed_ips"] else None,
    )


class AccountStore:
    __slots__ = ("_engine",)

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create_user(self, name: str, now_ms: int) -> User:
        try:
            async with self._engine.begin() as conn:
                res = await conn.execute(
                    users.insert()
                    .values(name=name, disabled=False, created_at=now_ms)
                    .returning(users.c.id)
                )
                uid = res.scalar_one()
        except IntegrityError as exc:
            raise AlreadyExists(f"user {name!r} already exists") from exc
        return User(uid, name, False, now_ms)

    async def get_user(self, name: str) -> User | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(users).where(users.c.name == name))).first()
        return User(row.id, row.name, row.disabled, row.created_at) if row else None

    async def list_users(self) -> list[User]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(users).order_by(users.c.id))).all()
        return [User(r.id, r.name, r.disabled, r.created_at) for r in rows]

    async def set_user_disabled(self, name: str, disabled: bool) -> bool:
        async with self._engine.begin() as conn:
            res = await conn.execute(
                update(users).where(users.c.name == name).values(disabled=disabled)
            )
        return res.rowcount > 0

    async def add_key(
        self,
        *,
        user_id: int,
        name: str,
        kind: str,
        prefix: str,
        now_ms: int,
        key_hash: str | None = None,
        access_key: str | None = None,
        secret_enc: str | None = None,
        allowed_models: list[str] | None = None,
        expires_at: int | None = None,
    ) -> int:
        values = {
            "user_id": user_id,
            "name": name,
            "kind": kind,
            "prefix": prefix,
            "key_hash": key_hash,
            "access_key": access_key,
            "secret_enc": secret_enc,
            "allowed_models": orjson.dumps(sorted(allowed_models)).decode()
            if allowed_models
            else None,
            "expires_at": expires_at,
            "disabled": False,
            "created_at": now_ms,
        }
        async with self._engine.begin() as conn:
            res = await conn.execute(api_keys.insert().values(**values).returning(api_keys.c.id))
            return int(res.scalar_one())

    async def key_by_hash(self, key_hash: str) -> KeyRecord | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(_KEY_SELECT.where(api_keys.c.key_hash == key_hash))).first()
        return _key(row) if row else None

    async def key_by_access_key(self, access_key: str) -> KeyRecord | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(_KEY_SELECT.where(api_keys.c.access_key == access_key))
            ).first()
        return _key(row) if row else None

    async def list_keys(self, user_id: int | None = None) -> list[KeyRecord]:
        stmt = _KEY_SELECT.order_by(api_keys.c.id)
        if user_id is not None:
            stmt = stmt.where(api_keys.c.user_id == user_id)
        async with self._engine.connect() as conn:
            return [_key(r) for r in (await conn.execute(stmt)).all()]

    async def set_key_disabled(self, key_id: int, disabled: bool) -> bool:
        async with self._engine.begin() as conn:
            res = await conn.execute(
                update(api_keys).where(api_keys.c.id == key_id).values(disabled=disabled)
            )
        return res.rowcount > 0
