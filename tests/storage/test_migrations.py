"""Alembic migrations: an empty DB gets the full schema, a second upgrade is a no-op, and the head
revision matches ``tables.metadata`` exactly (no autogenerate diff), on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, MetaData, String, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from kling_gateway.storage.db import alembic_config, head_revisions, make_engine, upgrade
from kling_gateway.storage.tables import metadata
from tests.postgres import fresh_run_database


@pytest.fixture(params=["sqlite", "postgres"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "postgres":
        url = await fresh_run_database()
    else:
        url = f"sqlite+aiosqlite:///{tmp_path}/migrate.db"
    eng = make_engine(url)
    try:
        yield eng
    finally:
        await eng.dispose()


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _schema_snapshot(conn: Connection) -> dict[str, Any]:
    insp = inspect(conn)
    snap: dict[str, Any] = {}
    for name in sorted(insp.get_table_names()):
        snap[name] = (
            sorted(c["name"] for c in insp.get_columns(name)),
            sorted(i["name"] or "" for i in insp.get_indexes(name)),
            sorted(u["name"] or "" for u in insp.get_unique_constraints(name)),
        )
    return snap


def _current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _diff(conn: Connection) -> list[Any]:
    ctx = MigrationContext.configure(
        conn, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(ctx, metadata))


def _head() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


async def test_empty_database_has_no_tables(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        assert await conn.run_sync(_tables) == set()


async def test_upgrade_creates_every_table(engine: AsyncEngine) -> None:
    await upgrade(engine)
    async with engine.connect() as conn:
        tables = await conn.run_sync(_tables)
        revision = await conn.run_sync(_current_revision)
    assert set(metadata.tables) <= tables
    assert tables - set(metadata.tables) == {"alembic_version"}
    assert revision is not None and revision == _head()


async def test_second_upgrade_is_a_no_op(engine: AsyncEngine) -> None:
    await upgrade(engine)
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO users (name, disabled, created_at) VALUES ('keep-me', false, 1)")
        )
    async with engine.connect() as conn:
        before = await conn.run_sync(_schema_snapshot)
    await upgrade(engine)
    async with engine.connect() as conn:
        after = await conn.run_sync(_schema_snapshot)
        names = (await conn.execute(text("SELECT name FROM users"))).scalars().all()
        versions = (
            (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
        )
    assert after == before
    assert names == ["keep-me"]
    assert versions == [_head()]


async def test_head_matches_metadata(engine: AsyncEngine) -> None:
    await upgrade(engine)
    async with engine.connect() as conn:
        diffs = await conn.run_sync(_diff)
    assert diffs == []


async def test_metadata_indexes_and_uniques_exist(engine: AsyncEngine) -> None:
    """Belt and braces next to compare_metadata: the constraints the stores rely on are really
    there."""
    await upgrade(engine)

    def names(conn: Connection) -> tuple[set[str], set[str]]:
        insp = inspect(conn)
        idx = {i["name"] for i in insp.get_indexes("tasks") if i["name"]}
        uq = {u["name"] for u in insp.get_unique_constraints("tasks") if u["name"]}
        return idx, uq

    async with engine.connect() as conn:
        indexes, uniques = await conn.run_sync(names)
    assert {"ix_tasks_next_poll_at", "ix_tasks_user_id_id"} <= indexes
    assert "ix_tasks_upstream" not in indexes  # written on every create, read by nothing (0008)
    assert "uq_tasks_user_id_external_task_id" in uniques


async def test_comparison_would_see_a_drift(engine: AsyncEngine) -> None:
    """The no-diff check above is live: a column the migrations do not create shows up as a diff."""
    await upgrade(engine)
    drifted = MetaData()
    for table in metadata.tables.values():
        table.to_metadata(drifted)
    drifted.tables["users"].append_column(Column("nickname", String(32), nullable=True))

    def diff(conn: Connection) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(conn), drifted))

    async with engine.connect() as conn:
        diffs = await conn.run_sync(diff)
    assert [d[0] for d in diffs] == ["add_column"]
    assert diffs[0][3].name == "nickname"


async def test_0006_moves_account_credentials_to_keys_and_back(engine: AsyncEngine) -> None:
    """Existing accounts keep working across the upgrade: their credentials become their first key
    (and a task pointing at the account keeps its foreign key); a downgrade puts them back."""
    await upgrade(engine, "0005")
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO upstream_accounts (name, base_url, access_key_enc, secret_key_enc, "
                "enabled, created_at) VALUES "
                "('default', 'https://k', 'enc-ak', 'enc-sk', true, 5), "
                "('empty', 'https://e', NULL, NULL, true, 6)"
            )
        )
    await upgrade(engine)
    async with engine.connect() as conn:
        keys = (
            await conn.execute(
                text(
                    "SELECT a.name, k.access_key_enc, k.secret_key_enc, k.api_key_enc, k.enabled, "
                    "k.hint FROM upstream_keys k JOIN upstream_accounts a ON a.id = k.account_id"
                )
            )
        ).all()
        weights = (await conn.execute(text("SELECT priority, weight FROM upstream_accounts"))).all()
    assert [tuple(k) for k in keys] == [("default", "enc-ak", "enc-sk", None, True, "")]
    assert [tuple(w) for w in weights] == [(0, 1), (0, 1)]

    def downgrade(conn: Connection) -> None:
        from alembic import command

        cfg = alembic_config(engine.url.render_as_string(hide_password=False))
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005")

    async with engine.begin() as conn:
        await conn.run_sync(downgrade)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT name, access_key_enc, secret_key_enc FROM upstream_accounts")
            )
        ).all()
    assert sorted(tuple(r) for r in rows) == [
        ("default", "enc-ak", "enc-sk"),
        ("empty", None, None),
    ]


def test_head_revisions_read_from_files_match_alembic() -> None:
    """``db.upgrade`` skips Alembic when the database is at these heads; they must be Alembic's."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert head_revisions() == set(script.get_heads())


async def test_upgrade_at_head_does_not_run_alembic(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await upgrade(engine)
    import alembic.command

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("Alembic ran although the schema is at head")

    monkeypatch.setattr(alembic.command, "upgrade", refuse)
    await upgrade(engine)  # at head: returns without Alembic
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    with pytest.raises(AssertionError, match="Alembic ran"):
        await upgrade(engine)  # behind: Alembic runs
