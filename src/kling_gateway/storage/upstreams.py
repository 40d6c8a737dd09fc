"""Upstream Kling accounts and the public→upstream model routes, both operator data."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from .tables import model_routes, upstream_accounts


@dataclass(frozen=True, slots=True)
class UpstreamAccount:
    id: int
    name: str
    base_url: str
    access_key_enc: str | None
    secret_key_enc: str | None
    api_key_enc: str | None
    enabled: bool


class UpstreamStore:
    __slots__ = ("_engine",)

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def upsert_account(
        self,
        *,
        name: str,
        base_url: str,
        now_ms: int,
        access_key_enc: str | None = None,
        secret_key_enc: str | None = None,
        api_key_enc: str | None = None,
    ) -> int:
        """Every node seeds its account at start, so on a fresh database two may both find none and both
        insert: the loser's unique violation means the row now exists, and its second pass updates it."""
        values = {
            "name": name,
            "base_url": base_url,
            "access_key_enc": access_key_enc,
            "secret_key_enc": secret_key_enc,
            "api_key_enc": api_key_enc,
        }
        try:
            return await self._upsert(values, now_ms)
        except IntegrityError:
            return await self._upsert(values, now_ms)

    async def _upsert(self, values: dict[str, str | None], now_ms: int) -> int:
        async with self._engine.begin() as conn:
            res = await conn.execute(
                update(upstream_accounts)
                .where(upstream_accounts.c.name == values["name"])
                .values(**values)
                .returning(upstream_accounts.c.id)
            )
            found = res.scalar_one_or_none()
            if found is not None:
                return int(found)
            res = await conn.execute(
                upstream_accounts.insert()
                .values(enabled=True, created_at=now_ms, **values)
                .returning(upstream_accounts.c.id)
            )
            return int(res.scalar_one())

    async def accounts(self) -> list[UpstreamAccount]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(upstream_accounts).order_by(upstream_accounts.c.id))).all()
        return [
            UpstreamAccount(
                r.id, r.name, r.base_url, r.access_key_enc, r.secret_key_enc, r.api_key_enc, r.enabled
            )
            for r in rows
        ]

    async def routes(self) -> dict[str, str]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(model_routes.c.public_name, model_routes.c.target))).all()
        return {r.public_name: r.target for r in rows}

    async def set_route(self, public_name: str, target: str, now_ms: int) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(model_routes).where(model_routes.c.public_name == public_name))
            await conn.execute(
                model_routes.insert().values(public_name=public_name, target=target, created_at=now_ms)
            )

    async def delete_route(self, public_name: str) -> bool:
        async with self._engine.begin() as conn:
            res = await conn.execute(delete(model_routes).where(model_routes.c.public_name == public_name))
        return res.rowcount > 0
