"""The console's own rows: the operator token (hashed) and signed-in sessions (hashed ids)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from .tables import console_sessions, console_tokens

OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class SessionRow:
    id_hash: str
    csrf: str
    created_at: int
    expires_at: int


class ConsoleStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def token_hash(self) -> str | None:
        stmt = select(console_tokens.c.token_hash).where(console_tokens.c.name == OPERATOR)
        async with self._engine.connect() as conn:
            return (await conn.execute(stmt)).scalar_one_or_none()

    async def add_token_if_absent(self, token_hash: str, now_ms: int) -> bool:
        """False when a token exists already (another node's first start made it)."""
        try:
            async with self._engine.begin() as conn:
                values = {"name": OPERATOR, "token_hash": token_hash, "created_at": now_ms}
                await conn.execute(insert(console_tokens).values(**values))
        except IntegrityError:
            return False
        return True

    async def replace_token(self, token_hash: str, now_ms: int) -> None:
        """The new token is the only one, and every session signed in with the old one ends."""
        async with self._engine.begin() as conn:
            await conn.execute(delete(console_tokens).where(console_tokens.c.name == OPERATOR))
            values = {"name": OPERATOR, "token_hash": token_hash, "created_at": now_ms}
            await conn.execute(insert(console_tokens).values(**values))
            await conn.execute(delete(console_sessions))

    async def add_session(self, row: SessionRow) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(console_sessions).where(console_sessions.c.expires_at <= row.created_at)
            )
            await conn.execute(
                insert(console_sessions).values(
                    id_hash=row.id_hash,
                    csrf=row.csrf,
                    created_at=row.created_at,
                    expires_at=row.expires_at,
                )
            )

    async def session(self, id_hash: str, now_ms: int) -> SessionRow | None:
        stmt = select(console_sessions).where(
            console_sessions.c.id_hash == id_hash, console_sessions.c.expires_at > now_ms
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return SessionRow(**row._mapping) if row is not None else None

    async def drop_session(self, id_hash: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(console_sessions).where(console_sessions.c.id_hash == id_hash)
            )
