"""What a database already holds, read before a Gateway is built: is the schema there, and one
encrypted secret to check the master key against (a wrong key stops a start, never is replaced)."""

from __future__ import annotations

from sqlalchemy import Column, Table, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from .tables import api_keys, upstream_keys, users

_ENCRYPTED: tuple[tuple[Table, Column[str]], ...] = (
    (upstream_keys, upstream_keys.c.access_key_enc),
    (upstream_keys, upstream_keys.c.secret_key_enc),
    (upstream_keys, upstream_keys.c.api_key_enc),
    (api_keys, api_keys.c.secret_enc),
    (users, users.c.webhook_secret_enc),
)


def _probe(conn: Connection) -> tuple[bool, str | None]:
    if not conn.dialect.has_table(conn, "alembic_version"):
        return False, None
    for table, column in _ENCRYPTED:
        if conn.dialect.has_table(conn, table.name):
            value = conn.execute(select(column).where(column.is_not(None)).limit(1)).scalar()
            if value is not None:
                return True, str(value)
    return True, None


async def probe(engine: AsyncEngine) -> tuple[bool, str | None]:
    """(schema present, one stored encrypted secret or None); connecting checks reachability."""
    async with engine.connect() as conn:
        return await conn.run_sync(_probe)
