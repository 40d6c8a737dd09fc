"""Engine construction and in-process migrations.

SQLite gets WAL, ``synchronous=NORMAL`` and a busy timeout on every connection: WAL lets the
refresher read while a request writes, and the busy timeout turns writer contention into a short
wait instead of an error.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

if TYPE_CHECKING:  # Alembic (with Mako and Pygments) is ~0.1 s of imports: loaded only to migrate
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_REVISION = re.compile(r'^(down_)?revision(?:: [^=]+)? = (?:"([^"]+)"|None)', re.MULTILINE)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    # savepoint journals in memory, not temp files: sqlite_hot.py
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.close()


def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        ensure_sqlite_dir(url)
        engine = create_async_engine(url, pool_size=5, max_overflow=5)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


# Key of the PostgreSQL advisory lock that serializes migrations (any constant unique to this app).
MIGRATION_LOCK = 0x6B67_7721


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` on the engine's own connection (no second
    engine, no event loop).

    On PostgreSQL several nodes may start at once on an empty database: without the
    transaction-scoped advisory lock all of them would run the first migration and
    all but one would die on "relation already exists". With it the others wait, then
    find the schema at head and do nothing."""

    def _do(conn: Connection) -> None:
        if revision == "head" and _at_head(conn):
            return  # every start after the first: no Alembic import, no script directory walk
        from alembic import command

        cfg = alembic_config(engine.url.render_as_string(hide_password=False))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)

    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        await conn.run_sync(_do)


def head_revisions() -> set[str]:
    """Heads of the migration graph read from the version files'
    ``revision``/``down_revision`` lines (tests/storage/test_migrations.py checks
    this against Alembic's own ``ScriptDirectory``)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        for down, rev in _REVISION.findall(path.read_text()):
            if rev:
                (parents if down else revisions).add(rev)
    return revisions - parents


def _at_head(conn: Connection) -> bool:
    """True when the database records exactly the head revision(s); any doubt means run Alembic."""
    if not conn.dialect.has_table(conn, "alembic_version"):
        return False
    recorded = {row[0] for row in conn.exec_driver_sql("SELECT version_num FROM alembic_version")}
    heads = head_revisions()
    return bool(heads) and recorded == heads


async def ping(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for other databases and in-memory ones."""
    if url.startswith("sqlite") and ":///" in url:
        path = url.split(":///", 1)[1].split("?", 1)[0]
        if path and path != ":memory:":
            return Path(path).expanduser()
    return None


def ensure_sqlite_dir(url: str) -> None:
    """SQLite creates the file but not its folder; make the folder so a fresh path just works. The
    file is created here, 0600 as the key file is: SQLite gives its -wal and -shm files its mode."""
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
