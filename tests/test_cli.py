"""The ``kling-gateway`` command line (typer), in-process with CliRunner on a temp SQLite DB."""

from __future__ import annotations

import asyncio
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from cryptography.fernet import Fernet
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool
from typer.testing import CliRunner, Result

from kling_gateway.cli import app
from kling_gateway.domain.task import TaskStatus
from kling_gateway.services.gateway import build_gateway
from kling_gateway.settings import Settings
from kling_gateway.storage import db
from kling_gateway.storage.tasks import TaskRecord

SK_RE = re.compile(r"sk-[A-Za-z0-9_\-]{20,}")


class Cli:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.db = tmp_path / "cli.db"
        self.env = {
            "KGW_DATABASE_URL": f"sqlite+aiosqlite:///{self.db}",
            "KGW_MASTER_KEY_FILE": str(tmp_path / "m.key"),
            "KGW_UPSTREAM": "simulator",
        }
        self.runner = CliRunner()

    def __call__(self, *args: str, expect: int | None = 0, **env: str) -> Result:
        result = self.runner.invoke(app, list(args), env={**self.env, **env})
        if expect is not None:
            assert result.exit_code == expect, (result.exit_code, result.output, result.exception)
        return result

    def settings(self) -> Settings:
        return Settings(
            _env_file=None,
            database_url=self.env["KGW_DATABASE_URL"],
            master_key_file=Path(self.env["KGW_MASTER_KEY_FILE"]),
            upstream="simulator",
        )


@pytest.fixture
def bare_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """No database and no master key yet."""
    monkeypatch.chdir(tmp_path)  # no stray .env, no ./kling-gateway.db
    for name in list(os.environ):
        if name.startswith("KGW_"):
            monkeypatch.delenv(name)
    return Cli(tmp_path)


@pytest.fixture
def cli(bare_cli: Cli) -> Cli:
    """Set up as `serve` would leave it: only serve, worker and db upgrade create a database."""
    bare_cli("db", "upgrade")
    return bare_cli


@pytest.fixture
def engines(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[AsyncEngine]]:
    """Every engine the CLI builds, disposed at teardown (a failed start may leave one open)."""
    made: list[AsyncEngine] = []
    real = db.make_engine

    def recording(url: str) -> AsyncEngine:
        made.append(real(url))
        return made[-1]

    monkeypatch.setattr(db, "make_engine", recording)
    yield made
    for engine in made:
        asyncio.run(engine.dispose())


def join_new_threads(before: set[threading.Thread]) -> None:
    """Let driver threads started by a failed command finish inside the test that started them."""
    for thread in set(threading.enumerate()) - before:
        thread.join(5)


def insert_task(cli: Cli, user: str, external_task_id: str | None = None) -> str:
    async def main() -> str:
        gw = await build_gateway(cli.settings())
        try:
            account = await gw.accounts.get_user(user)
            assert account is not None
            now = gw.now_ms()
            task_id = gw.ids.mint(now)
            await gw.tasks.insert(
                TaskRecord(
                    id=task_id,
                    user_id=account.id,
                    key_id=None,
                    public_model="my-fast",
                    upstream_model="kling-v2-5-turbo",
                    status=TaskStatus.PROCESSING.value,
                    status_msg="rendering",
                    external_task_id=external_task_id,
                    request_hash="0" * 64,
                    request_json='{"prompt":"a fox"}',
                    callback_url=None,
                    mode="pro",
                    duration=10,
                    sound=False,
                    watermark=False,
                    upstream_account_id=gw.primary().account_id,
                    upstream_task_id="up-123",
                    result_json=None,
                    unit_deduction=None,
                    created_at=now,
                    updated_at=now,
                    next_poll_at=now + 1000,
                    poll_attempts=2,
                )
            )
            return task_id
        finally:
            await gw.aclose()

    return asyncio.run(main())


def test_no_args_shows_help(cli: Cli) -> None:
    result = cli(expect=None)
    assert result.exit_code in (0, 2)
    for group in ("users", "keys", "models", "tasks", "db"):
        assert group in result.output


def test_db_upgrade(cli: Cli) -> None:
    result = cli("db", "upgrade")
    assert "database at head" in result.output
    assert cli.db.exists()
    assert "database at head" in cli("db", "upgrade").output  # again: a no-op


# the failed connect also leaves aiosqlite's worker thread reporting to a closed loop: same bug
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_db_upgrade_creates_the_sqlite_folder(cli: Cli, engines: list[AsyncEngine]) -> None:
    nested = cli.tmp_path / "new" / "dir" / "gw.db"
    before = set(threading.enumerate())
    result = cli("db", "upgrade", expect=None, KGW_DATABASE_URL=f"sqlite+aiosqlite:///{nested}")
    join_new_threads(before)
    assert result.exit_code == 0, result.output
    assert nested.exists()


def test_users_create_and_list(cli: Cli) -> None:
    assert "created user alice" in cli("users", "create", "alice").output
    cli("users", "create", "bob")
    listed = cli("users", "list").output
    assert "alice" in listed and "bob" in listed
    assert listed.index("alice") < listed.index("bob")


def test_duplicate_user_exits_1_with_a_message(cli: Cli) -> None:
    cli("users", "create", "alice")
    result = cli("users", "create", "alice", expect=1)
    assert "error:" in result.stderr and "already exists" in result.stderr
    assert "Traceback" not in result.output


def test_keys_create_prints_an_sk_key_once(cli: Cli) -> None:
    cli("users", "create", "alice")
    out = cli("keys", "create", "alice").output
    keys = SK_RE.findall(out)
    assert len(keys) == 1, out
    assert "alice" in out and "shown once" in out

    listed = cli("keys", "list").output
    assert keys[0] not in listed
    assert keys[0][:11] in listed  # the visible prefix
    assert "alice" in listed and "sk" in listed


def test_keys_create_aksk_prints_access_and_secret(cli: Cli) -> None:
    cli("users", "create", "alice")
    out = cli("keys", "create", "alice", "--aksk").output
    access = re.search(r"access key: (\S+)", out)
    secret = re.search(r"secret key: (\S+)", out)
    assert access and secret, out
    assert access.group(1).startswith("ak-")
    assert not SK_RE.search(out)

    listed = cli("keys", "list").output
    assert access.group(1) in listed  # the access key is the prefix: not a secret
    assert secret.group(1) not in listed
    assert "aksk" in listed


def test_keys_create_with_models_and_expiry(cli: Cli) -> None:
    cli("users", "create", "alice")
    cli(
        "keys",
        "create",
        "alice",
        "--model",
        "kling-v3",
        "--model",
        "kling-v1",
        "--expires-days",
        "2",
    )
    listed = cli("keys", "list", "--user", "alice").output
    row = listed.splitlines()[2]
    assert "kling-v1,kling-v3" in row
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", row)  # an expiry date, not "-"


def test_keys_create_refuses_unknown_model_and_user(cli: Cli) -> None:
    cli("users", "create", "alice")
    result = cli("keys", "create", "alice", "--model", "kling-v9", expect=1)
    assert "unknown model" in result.stderr and "kling-v9" in result.stderr
    result = cli("keys", "create", "ghost", expect=1)
    assert "no user named 'ghost'" in result.stderr
    assert len(cli("keys", "list").output.strip().splitlines()) == 2  # header + rule only


def test_keys_list_per_user(cli: Cli) -> None:
    for user in ("alice", "bob"):
        cli("users", "create", user)
        cli("keys", "create", user)
    rows = cli("keys", "list", "--user", "bob").output.strip().splitlines()[2:]
    assert len(rows) == 1 and "bob" in rows[0]
    assert "no user named 'ghost'" in cli("keys", "list", "--user", "ghost", expect=1).stderr


def test_keys_revoke(cli: Cli) -> None:
    cli("users", "create", "alice")
    cli("keys", "create", "alice")
    [row] = cli("keys", "list").output.strip().splitlines()[2:]
    key_id = row.split()[0]
    assert row.split()[-1] == "False"
    assert f"key {key_id} revoked" in cli("keys", "revoke", key_id).output
    [row] = cli("keys", "list").output.strip().splitlines()[2:]
    assert row.split()[-1] == "True"
    result = cli("keys", "revoke", "9999", expect=1)
    assert "no key with id 9999" in result.stderr


def test_keys_new_master_key_is_a_fernet_key(bare_cli: Cli) -> None:
    first = bare_cli("keys", "new-master-key").output.strip()
    second = bare_cli("keys", "new-master-key").output.strip()
    assert first != second
    box = Fernet(first.encode())
    assert box.decrypt(box.encrypt(b"x")) == b"x"
    # and it is accepted as KGW_MASTER_KEY, from the first start on
    bare_cli("db", "upgrade", KGW_MASTER_KEY=first)
    bare_cli("users", "create", "alice", KGW_MASTER_KEY=first)
    assert not (bare_cli.tmp_path / "m.key").exists()


def test_models_list_map_unmap(cli: Cli) -> None:
    assert re.search(r"^kling-v3\s+kling-v3\s+kling-v3$", cli("models", "list").output, re.M)
    out = cli("models", "map", "my-fast", "kling-v2-5-turbo").output
    assert "my-fast -> kling-v2-5-turbo (upstream kling-v2-5-turbo)" in out
    listed = cli("models", "list").output
    assert re.search(r"^my-fast\s+kling-v2-5-turbo\s+kling-v2-5-turbo$", listed, re.M)

    assert "my-fast unmapped" in cli("models", "unmap", "my-fast").output
    assert "my-fast" not in cli("models", "list").output
    assert "has no route" in cli("models", "unmap", "my-fast", expect=1).stderr


def test_models_map_cycle_is_refused_and_nothing_stored(cli: Cli) -> None:
    cli("models", "map", "a", "kling-v2-6")
    cli("models", "map", "b", "a")
    before = cli("models", "list").output
    result = cli("models", "map", "a", "b", expect=1)
    assert "cycle" in result.stderr and "Traceback" not in result.output
    assert cli("models", "list").output == before
    assert re.search(r"^a\s+kling-v2-6\s+kling-v2-6$", before, re.M)


def test_models_map_to_an_unmapped_name_is_refused(cli: Cli) -> None:
    # "a -> b" with b neither a model nor a route is a dead end, so "b -> a" can never form a cycle
    cli("models", "map", "a", "b", expect=1)
    cli("models", "map", "b", "a", expect=1)
    listed = cli("models", "list").output
    assert not re.search(r"^[ab]\s", listed, re.M)


def test_models_map_dead_end_is_refused(cli: Cli) -> None:
    result = cli("models", "map", "x", "kling-v9", expect=1)
    assert "kling-v9" in result.stderr and "not in the capability table" in result.stderr
    assert not re.search(r"^x\s", cli("models", "list").output, re.M)


def test_tasks_list_and_show(cli: Cli) -> None:
    cli("users", "create", "alice")
    cli("users", "create", "bob")
    cli("models", "map", "my-fast", "kling-v2-5-turbo")
    task_id = insert_task(cli, "alice", external_task_id="fox-1")

    listed = cli("tasks", "list").output
    assert (
        task_id in listed and "my-fast" in listed and "processing" in listed and "fox-1" in listed
    )
    assert task_id in cli("tasks", "list", "--user", "alice").output
    assert task_id not in cli("tasks", "list", "--user", "bob").output
    assert task_id in cli("tasks", "list", "--status", "processing").output
    assert task_id not in cli("tasks", "list", "--status", "succeed").output
    assert "no user named 'ghost'" in cli("tasks", "list", "--user", "ghost", expect=1).stderr

    shown = cli("tasks", "show", task_id).output
    fields = {
        k.strip(): v
        for k, v in (line.split(": ", 1) for line in shown.splitlines() if ": " in line)
    }
    assert fields["task id"] == task_id
    assert fields["model"] == "my-fast" and fields["upstream model"] == "kling-v2-5-turbo"
    assert fields["status"] == "processing" and fields["message"] == "rendering"
    assert fields["external task id"] == "fox-1" and fields["upstream task id"] == "up-123"
    assert fields["mode"] == "pro" and fields["duration"] == "10" and fields["polls"] == "2"
    assert fields["result"] == "" and fields["callback url"] == ""


def test_tasks_show_unknown_exits_1(cli: Cli) -> None:
    result = cli("tasks", "show", "123456789012345678", expect=1)
    assert "no task '123456789012345678'" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", [["users", "list"], ["db", "upgrade"], ["keys", "list"]])
def test_invalid_database_url_exits_2_naming_it(bare_cli: Cli, command: list[str]) -> None:
    result = bare_cli(*command, expect=2, KGW_DATABASE_URL="mysql://x")
    assert "invalid settings" in result.stderr
    assert "KGW_DATABASE_URL" in result.stderr
    assert "Traceback" not in result.output
    assert not bare_cli.db.exists()


def test_invalid_master_key_exits_2(cli: Cli) -> None:
    result = cli("users", "list", expect=2, KGW_MASTER_KEY="not-a-key")
    assert "KGW_MASTER_KEY" in result.stderr and "Traceback" not in result.output


def test_corrupt_master_key_file_exits_2(cli: Cli, engines: list[AsyncEngine]) -> None:
    (cli.tmp_path / "m.key").write_text("garbage\n")
    result = cli("users", "list", expect=2)
    assert "KGW_MASTER_KEY_FILE" in result.stderr and "not a master key file" in result.stderr
    assert "Traceback" not in result.output
    assert (cli.tmp_path / "m.key").read_text() == "garbage\n"  # never overwritten


def checked_in(engine: AsyncEngine) -> int:
    pool = engine.pool
    assert isinstance(pool, QueuePool)  # make_engine sizes a queue pool for every database
    return pool.checkedin()


def test_failed_start_closes_the_database(cli: Cli, engines: list[AsyncEngine]) -> None:
    (cli.tmp_path / "m.key").write_text("garbage\n")
    cli("users", "list", expect=2)
    assert engines and all(checked_in(engine) == 0 for engine in engines)


def test_dotenv_in_cwd_is_read(cli: Cli) -> None:
    """The fixture's chdir matters: a .env in the working directory feeds Settings."""
    (cli.tmp_path / ".env").write_text("KGW_DATABASE_URL=mysql://from-dotenv\n")
    env = {k: v for k, v in cli.env.items() if k != "KGW_DATABASE_URL"}
    result = cli.runner.invoke(app, ["users", "list"], env=env)
    assert result.exit_code == 2 and "KGW_DATABASE_URL" in result.stderr


def commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    for name, command in getattr(group, "commands", {}).items():
        yield (*path, name), command
        yield from commands(command, (*path, name))


def test_every_command_has_help_and_no_type_tags(bare_cli: Cli) -> None:
    every = list(commands(typer.main.get_command(app)))
    assert len(every) > 40
    for path, command in every:
        assert (command.help or "").strip(), f"{' '.join(path)} has no help text"
        shown = bare_cli(*path, "--help", COLUMNS="200").output
        assert not re.search(r"<(bool|str|int|float|list\[str\])>", shown), shown
