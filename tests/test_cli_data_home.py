"""Where the CLI finds the gateway's data (KGW_HOME), what it may create, and what it never touches:
only serve, worker and db upgrade create a database or key and write upstream accounts."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path
from typing import TypedDict

import pytest

from kling_gateway.cli import app
from kling_gateway.services.gateway import build_gateway
from kling_gateway.settings import Settings
from kling_gateway.storage.upstreams import UpstreamAccount
from tests.test_cli import Cli, bare_cli, cli  # noqa: F401 - the fixtures


class OtherShell(TypedDict):
    """A shell with another simulator port and real credentials."""

    KGW_SIMULATOR_PORT: str
    KGW_KLING_API_KEY: str


def accounts(of: Cli) -> list[UpstreamAccount]:
    async def main() -> list[UpstreamAccount]:
        gw = await build_gateway(of.settings(), seed=False)
        try:
            return await gw.upstreams.accounts()
        finally:
            await gw.aclose()

    return asyncio.run(main())


def test_other_commands_leave_the_upstream_accounts_alone(cli: Cli) -> None:  # noqa: F811
    before = accounts(cli)
    assert [a.name for a in before] == ["simulator"]
    cli("users", "create", "alice")
    # a shell with another simulator port and real credentials: nothing of it reaches the accounts
    other: OtherShell = {"KGW_SIMULATOR_PORT": "9999", "KGW_KLING_API_KEY": "kling-key-0123456789"}
    cli("keys", "create", "alice", **other)
    cli("users", "list", KGW_UPSTREAM="auto", **other)
    assert accounts(cli) == before
    cli("db", "upgrade", **other)  # a set-up command does write them
    assert accounts(cli) != before


def test_commands_other_than_set_up_create_nothing(bare_cli: Cli) -> None:  # noqa: F811
    result = bare_cli("users", "list", expect=2)
    assert "no database at" in result.stderr and str(bare_cli.db) in result.stderr
    assert "KGW_DATABASE_URL" in result.stderr and "db upgrade" in result.stderr
    assert not bare_cli.db.exists() and not (bare_cli.tmp_path / "m.key").exists()


def test_home_holds_the_database_and_key_for_serve_and_cli_alike(
    tmp_path: Path,
    bare_cli: Cli,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = tmp_path / "data"
    bare_cli.env = {"KGW_HOME": str(home), "KGW_UPSTREAM": "simulator"}
    bare_cli("db", "upgrade")
    assert sorted(p.name for p in home.iterdir()) == ["kling-gateway.db", "kling-gateway.key"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    bare_cli("users", "create", "alice")
    assert "alice" in bare_cli("users", "list").output
    assert not list(elsewhere.iterdir())
    # and without KGW_HOME, from elsewhere: refused, saying where it looked
    result = bare_cli.runner.invoke(app, ["users", "list"], env={"KGW_HOME": None})
    assert result.exit_code == 2 and str(elsewhere) in result.stderr


def test_home_defaults_the_files_only() -> None:
    s = Settings(_env_file=None, home=Path("/srv/kgw"))
    assert s.database_url == "sqlite+aiosqlite:////srv/kgw/kling-gateway.db"
    assert s.master_key_file == Path("/srv/kgw/kling-gateway.key")
    url = "sqlite+aiosqlite:///x.db"
    home = Path("/srv/kgw")
    explicit = Settings(_env_file=None, home=home, database_url=url)
    assert explicit.database_url == "sqlite+aiosqlite:///x.db"


def test_database_files_are_private(cli: Cli) -> None:  # noqa: F811
    async def main() -> dict[str, int]:
        gw = await build_gateway(cli.settings())  # open: the -wal and -shm files exist now
        try:
            await gw.accounts.create_user("alice", gw.now_ms())
            files = [p for p in cli.tmp_path.iterdir() if p.name.startswith("cli.db")]
            return {p.name: stat.S_IMODE(p.stat().st_mode) for p in files}
        finally:
            await gw.aclose()

    modes = asyncio.run(main())
    assert modes == {"cli.db": 0o600, "cli.db-shm": 0o600, "cli.db-wal": 0o600}
    assert stat.S_IMODE((cli.tmp_path / "m.key").stat().st_mode) == 0o600
