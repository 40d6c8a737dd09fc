"""The request hot path's statements, run on the raw async driver (aiosqlite / asyncpg).

Measured here: one statement through SQLAlchemy's async engine costs 0.4–1.5 ms of CPU (greenlet hop, pool
checkout, reset-on-return, several thread round trips on aiosqlite), the same statement on the driver
0.13 ms (aiosqlite, autocommit) — and a create needs two of them. So the few statements every request runs
(task insert, compare-and-set, lookup) are **compiled once by SQLAlchemy** from ``tables.py`` for the
engine's dialect and executed on a dedicated driver connection. Everything else stays on the engine.
SQLite's driver (sqlite_hot.py) runs them on the event loop and group-commits the writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import attrgetter
from typing import Any, Protocol

from sqlalchemy import BindParameter, Select, bindparam, case, insert, or_, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.expression import ClauseElement

from .sqlite_hot import SqliteDriver
from .steps import Step, UniqueViolation, should_run
from .tables import tasks, webhook_deliveries

__all__ = ["TASK_COLUMNS", "HotPath", "Step", "UniqueViolation"]


class _Driver(Protocol):
    async def execute(self, sql: str, args: Sequence[Any]) -> int:
        """Run a write; returns the rows it changed (an UPDATE: the rows it matched; an INSERT … ON
        CONFLICT DO NOTHING: 0 when it did nothing)."""

    async def fetchone(self, sql: str, args: Sequence[Any]) -> Sequence[Any] | None: ...

    async def run_tx(self, steps: Sequence[Step]) -> int | None:
        """Run ``steps`` in one transaction. None when committed; else the index of the ``require`` step
        that matched nothing (everything rolled back)."""

    async def close(self) -> None: ...


async def _keep_session(conn: Any) -> None:
    """Pool release hook: nothing beyond asyncpg's own rollback of an open transaction. The default reset
    (``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``) is a round trip on every
    release — two per create, a tenth of its CPU under py-spy — and undoes session state these statements
    never set (no SET, LISTEN, cursors or advisory locks on this pool)."""


def _changed(status: str) -> int:
    """The row count of a command tag ("UPDATE 1", "INSERT 0 1", "SELECT 3"): what asyncpg's ``execute``
    returns, without the rows a RETURNING clause would make the server send."""
    tail = status.rpartition(" ")[2]
    return int(tail) if tail.isdigit() else 0


class _Postgres:
    def __init__(self, pool: Any) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, dsn: str, size: int) -> _Postgres:
        import asyncpg

        return cls(await asyncpg.create_pool(dsn, min_size=1, max_size=size, reset=_keep_session))

    async def execute(self, sql: str, args: Sequence[Any]) -> int:
        import asyncpg

        try:
            return _changed(await self._pool.execute(sql, *args))
        except asyncpg.UniqueViolationError as exc:
            raise UniqueViolation(str(exc.constraint_name or exc)) from exc

    async def fetchone(self, sql: str, args: Sequence[Any]) -> Sequence[Any] | None:
        row = await self._pool.fetchrow(sql, *args)
        return tuple(row) if row is not None else None

    async def run_tx(self, steps: Sequence[Step]) -> int | None:
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


class _Compiled:
    """A statement compiled for one dialect, with its positional parameter order."""

    __slots__ = ("defaults", "names", "sql")

    def __init__(self, stmt: ClauseElement, dialect: Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql = str(compiled)
        self.names: tuple[str, ...] = tuple(getattr(compiled, "positiontup", None) or ())
        self.defaults = {k: v for k, v in compiled.params.items() if v is not None}  # e.g. LIMIT 1
        if compiled.params and not self.names:
            raise RuntimeError(f"dialect {dialect.name} compiled {stmt!r} without positional parameters")

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        return [params[name] if name in params else self.defaults[name] for name in self.names]


TASK_COLUMNS = tuple(c.name for c in tasks.c)


def _find_stmt() -> Select[Any]:
    ident: BindParameter[str] = bindparam("ident")
    return (
        select(tasks)
        .where(
            tasks.c.user_id == bindparam("user_id"),
            or_(tasks.c.id == ident, tasks.c.external_task_id == ident),
            tasks.c.status != bindparam("hidden"),
        )
        .order_by(case((tasks.c.id == ident, 0), else_=1))
        .limit(1)
    )


def _insert_ignoring_duplicates(dialect: Dialect) -> ClauseElement:
    if dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(webhook_deliveries).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(webhook_deliveries).on_conflict_do_nothing()


class HotPath:
    def __init__(self, driver: _Driver, dialect: Dialect) -> None:
        self._driver = driver
        self._dialect = dialect
        self._insert = _Compiled(insert(tasks), dialect)
        # A row's insert parameters read straight off the record, in the statement's order: one C call
        # instead of a dict of 30 columns and a list built from it (about 2 % of a create under py-spy).
        self._insert_row = attrgetter(*self._insert.names)
        self._get = _Compiled(select(tasks).where(tasks.c.id == bindparam("id")), dialect)
        self._find = _Compiled(_find_stmt(), dialect)
        self._updates: dict[tuple[str, ...], _Compiled] = {}
        self._event = _Compiled(_insert_ignoring_duplicates(dialect), dialect)

    @classmethod
    async def open(cls, engine: AsyncEngine, pool_size: int = 10) -> HotPath:
        url = engine.url
        if url.get_backend_name() == "sqlite":
            driver: _Driver = await SqliteDriver.open(url.database or "")
        else:
            dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
            driver = await _Postgres.open(dsn, pool_size)
        return cls(driver, engine.dialect)

    async def close(self) -> None:
        await self._driver.close()

    @property
    def insert_sql(self) -> str:
        return self._insert.sql

    def insert_row(self, record: object) -> tuple[Any, ...]:
        """The insert's parameters from an object with one attribute per ``tasks`` column (a TaskRecord)."""
        row: tuple[Any, ...] = self._insert_row(record)
        return row

    async def insert_task(self, record: object) -> None:
        await self._driver.execute(self._insert.sql, self.insert_row(record))

    async def get_task(self, task_id: str) -> Sequence[Any] | None:
        return await self._driver.fetchone(self._get.sql, [task_id])

    async def find_task(self, user_id: int, ident: str, hidden: str) -> Sequence[Any] | None:
        params = {"user_id": user_id, "ident": ident, "hidden": hidden}
        return await self._driver.fetchone(self._find.sql, self._find.args(params))

    async def transition(
        self,
        task_id: str,
        expected: str,
        values: Mapping[str, Any],
        event: Mapping[str, Any] | None = None,
        after: Sequence[Step] = (),
    ) -> bool:
        """``UPDATE tasks SET … WHERE id = :id AND status = :expected``; True when it matched.
        With ``event``, the webhook delivery row is inserted in the same transaction, only if the update
        matched, and a second event for the same (task, status) is ignored; ``after`` steps (money) run in
        that transaction too."""
        key = tuple(sorted(values))
        compiled = self._updates.get(key)
        if compiled is None:
            stmt = (
                update(tasks)
                .where(tasks.c.id == bindparam("w_id"), tasks.c.status == bindparam("w_status"))
                .values({name: bindparam(f"v_{name}") for name in key})
            )
            compiled = self._updates[key] = _Compiled(stmt, self._dialect)
        params = {f"v_{k}": v for k, v in values.items()}
        params["w_id"] = task_id
        params["w_status"] = expected
        if event is None and not after:
            return await self._driver.execute(compiled.sql, compiled.args(params)) == 1
        steps = [Step(compiled.sql, compiled.args(params), require=True)]
        if event is not None:
            steps.append(Step(self._event.sql, self._event.args(event)))
        steps.extend(after)
        return await self._driver.run_tx(steps) is None

    def compile(self, stmt: ClauseElement) -> _Compiled:
        """Compile a statement for this dialect once (callers cache the result)."""
        return _Compiled(stmt, self._dialect)

    async def run_tx(self, steps: Sequence[Step]) -> int | None:
        return await self._driver.run_tx(steps)
