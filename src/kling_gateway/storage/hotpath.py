"""The raw async drivers (aiosqlite / asyncpg) the per-request statements run on.

A statement through SQLAlchemy's async engine costs several times its CPU on the driver itself
(docs/benchmarks.md), so the statements every request runs are compiled once by SQLAlchemy from
``tables.py`` (``HotPath.compile``) and executed here; the stores own them (task_sql.py, money.py).
Everything else stays on the engine. SQLite's driver (sqlite_hot.py) group-commits the writes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.expression import ClauseElement

from .retry import retried
from .sqlite_hot import SqliteDriver
from .steps import Step, UniqueViolation, should_run

__all__ = ["Compiled", "HotPath", "Step", "UniqueViolation"]


class _Driver(Protocol):
    async def execute(self, sql: str, args: Sequence[Any]) -> int:
        """Run a write; returns the rows it changed (an UPDATE: the rows it matched; an INSERT … ON
        CONFLICT DO NOTHING: 0 when it did nothing)."""

    async def fetchone(self, sql: str, args: Sequence[Any]) -> Sequence[Any] | None: ...

    async def run_tx(self, steps: Sequence[Step]) -> int | None:
        """Run ``steps`` in one transaction. None when committed; else the index of the ``require``
        step that matched nothing (everything rolled back)."""

    async def close(self) -> None: ...


async def _keep_session(conn: Any) -> None:
    """Pool release hook: nothing beyond asyncpg's own rollback of an open transaction. The default
    reset (``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``) is a round trip on
    every release (two per create: see docs/benchmarks.md) and undoes session state these
    statements never set (no SET, LISTEN, cursors or advisory locks on this pool)."""


def _changed(status: str) -> int:
    """The row count of a command tag ("UPDATE 1", "INSERT 0 1", "SELECT 3"): what asyncpg's
    ``execute`` returns, without the rows a RETURNING clause would make the server send."""
    tail = status.rpartition(" ")[2]
    return int(tail) if tail.isdigit() else 0


class _Postgres:
    def __init__(self, pool: Any) -> None:
        self._pool = pool

    @classmethod
    async def open(
        cls, dsn: str, size: int, on_query: Callable[[Any], None] | None = None
    ) -> _Postgres:
        import asyncpg

        async def watch(conn: Any) -> None:
            conn.add_query_logger(on_query)

        init = watch if on_query is not None else None
        pool = await asyncpg.create_pool(
            dsn, min_size=1, max_size=size, reset=_keep_session, init=init
        )
        return cls(pool)

    # A statement or transaction the server aborted for a deadlock or a serialization failure wrote
    # nothing, so it is run again (retry.py).
    async def execute(self, sql: str, args: Sequence[Any]) -> int:
        import asyncpg

        try:
            return _changed(await retried(lambda: self._pool.execute(sql, *args)))
        except asyncpg.UniqueViolationError as exc:
            raise UniqueViolation(str(exc.constraint_name or exc)) from exc

    async def fetchone(self, sql: str, args: Sequence[Any]) -> Sequence[Any] | None:
        import asyncpg

        try:
            row = await retried(lambda: self._pool.fetchrow(sql, *args))
        except asyncpg.UniqueViolationError as exc:
            raise UniqueViolation(str(exc.constraint_name or exc)) from exc
        return tuple(row) if row is not None else None

    async def run_tx(self, steps: Sequence[Step]) -> int | None:
        return await retried(lambda: self._run_tx(steps))

    async def _run_tx(self, steps: Sequence[Step]) -> int | None:
        import asyncpg

        class _Abort(Exception):
            def __init__(self, index: int) -> None:
                self.index = index

        results: list[int] = []
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                for i, step in enumerate(steps):
                    if not should_run(results, steps, i):
                        results.append(0)
                        continue
                    count = _changed(await conn.execute(step.sql, *step.args))
                    results.append(count)
                    if step.require and count == 0:
                        raise _Abort(i)  # leaving the block by an exception rolls back
        except _Abort as abort:
            return abort.index
        except asyncpg.UniqueViolationError as exc:
            raise UniqueViolation(str(exc.constraint_name or exc)) from exc
        return None

    async def close(self) -> None:
        await self._pool.close()


class Compiled:
    """A statement compiled for one dialect, with its positional parameter order."""

    __slots__ = ("defaults", "names", "sql")

    def __init__(self, stmt: ClauseElement, dialect: Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql = str(compiled)
        self.names: tuple[str, ...] = tuple(getattr(compiled, "positiontup", None) or ())
        self.defaults = {k: v for k, v in compiled.params.items() if v is not None}  # e.g. LIMIT 1
        if compiled.params and not self.names:
            raise RuntimeError(
                f"dialect {dialect.name} compiled {stmt!r} without positional parameters"
            )

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        return [params[name] if name in params else self.defaults[name] for name in self.names]


class HotPath:
    """A raw driver connection and the dialect its statements are compiled for. Knows no table: the
    stores compile their own statements once (``compile``) and run them here."""

    def __init__(self, driver: _Driver, dialect: Dialect) -> None:
        self._driver = driver
        self.dialect = dialect

    @classmethod
    async def open(
        cls,
        engine: AsyncEngine,
        pool_size: int = 10,
        *,
        on_query: Callable[[Any], None] | None = None,
    ) -> HotPath:
        """``on_query`` (PostgreSQL): called with every statement a pooled connection sends
        (asyncpg's query logger), for tests that count round trips."""
        url = engine.url
        if url.get_backend_name() == "sqlite":
            driver: _Driver = await SqliteDriver.open(url.database or "")
        else:
            dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
            driver = await _Postgres.open(dsn, pool_size, on_query)
        return cls(driver, engine.dialect)

    @property
    def postgres(self) -> bool:
        return bool(self.dialect.name == "postgresql")

    async def close(self) -> None:
        await self._driver.close()

    def compile(self, stmt: ClauseElement) -> Compiled:
        """Compile a statement for this dialect once (callers keep the result)."""
        return Compiled(stmt, self.dialect)

    async def execute(self, sql: str, args: Sequence[Any]) -> int:
        return await self._driver.execute(sql, args)

    async def fetchone(self, sql: str, args: Sequence[Any]) -> Sequence[Any] | None:
        """A read; on PostgreSQL also a single statement that writes (its one
        implicit transaction)."""
        return await self._driver.fetchone(sql, args)

    async def run_tx(self, steps: Sequence[Step]) -> int | None:
        return await self._driver.run_tx(steps)
