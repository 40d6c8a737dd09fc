"""The operator's task views: found by the client's external_task_id as the client API finds them,
user names, what the client was charged next to Kling's units, and filters that refuse a typo."""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from kling_gateway.cli import app
from kling_gateway.domain.task import TaskStatus
from kling_gateway.services.admin import create_user
from kling_gateway.services.gateway import build_gateway
from kling_gateway.settings import Settings
from kling_gateway.storage.tasks import TaskRecord


class Cli:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.env = {
            "KGW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
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
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("KGW_"):
            monkeypatch.delenv(name)
    cli = Cli(tmp_path)
    cli("db", "upgrade")  # only set-up commands create a database
    return cli


def fields(output: str) -> dict[str, str]:
    pairs = (line.split(": ", 1) for line in output.splitlines() if ": " in line)
    return {k.strip(): v for k, v in pairs}


def seed(cli: Cli) -> dict[str, str]:
    """alice: fox-1 (settled 4 of 5 credits, 0.5 Kling units) and owl-1 (open, 2.5 reserved);
    bob: fox-1 too (refunded). Returns our ids by "user/external id"."""

    async def main() -> dict[str, str]:
        gw = await build_gateway(cli.settings())
        try:
            alice = await create_user(gw, "alice")
            bob = await create_user(gw, "bob")
            now = gw.now_ms()
            base = TaskRecord(
                id="",
                user_id=alice.id,
                key_id=None,
                public_model="kling-v3",
                upstream_model="kling-v3",
                status=TaskStatus.SUCCEED.value,
                status_msg="",
                external_task_id="fox-1",
                request_hash="0" * 64,
                request_json="{}",
                callback_url=None,
                mode="std",
                duration=5,
                sound=False,
                watermark=False,
                upstream_account_id=gw.primary().account_id,
                upstream_task_id="up-1",
                result_json=None,
                unit_deduction="0.5",
                created_at=now,
                updated_at=now,
                next_poll_at=None,
                poll_attempts=0,
                reserved_micro=5_000_000,
                charged_micro=4_000_000,
            )
            rows = {
                "alice/fox-1": base,
                "alice/owl-1": replace(
                    base,
                    external_task_id="owl-1",
                    status=TaskStatus.PROCESSING.value,
                    unit_deduction=None,
                    reserved_micro=2_500_000,
                    charged_micro=None,
                ),
                "bob/fox-1": replace(base, user_id=bob.id, status="failed", charged_micro=0),
            }
            ids = {}
            for i, (label, record) in enumerate(rows.items()):
                ids[label] = gw.ids.mint(now + i)
                await gw.tasks.insert(replace(record, id=ids[label]))
            return ids
        finally:
            await gw.aclose()

    return asyncio.run(main())


def test_show_finds_a_task_by_the_clients_external_id_with_the_user(cli: Cli) -> None:
    ids = seed(cli)
    shown = fields(cli("tasks", "show", "fox-1", "--user", "bob").output)
    assert shown["task id"] == ids["bob/fox-1"] and shown["user"] == "bob"
    shown = fields(cli("tasks", "show", "owl-1").output)  # one task has it: no user needed
    assert shown["task id"] == ids["alice/owl-1"] and shown["user"] == "alice"
    assert fields(cli("tasks", "show", ids["alice/fox-1"]).output)["external task id"] == "fox-1"
    # our id with the wrong user is not that user's task
    refused = cli("tasks", "show", ids["alice/fox-1"], "--user", "bob", expect=1)
    assert f"no task '{ids['alice/fox-1']}' of user 'bob'" in refused.stderr


def test_an_external_id_of_several_users_is_an_error_listing_them(cli: Cli) -> None:
    seed(cli)
    for command in (["tasks", "show", "fox-1"], ["webhooks", "log", "fox-1"]):
        result = cli(*command, expect=1)
        assert "external_task_id 'fox-1' names tasks of several users (alice, bob)" in result.stderr
        assert "--user" in result.stderr and "Traceback" not in result.output


def test_webhooks_log_takes_the_external_id_too(cli: Cli) -> None:
    ids = seed(cli)
    out = cli("webhooks", "log", "fox-1", "--user", "alice").output
    assert "no callback deliveries" in out
    assert "no task 'fox-9'" in cli("webhooks", "log", "fox-9", expect=1).stderr
    unknown_user = cli("webhooks", "log", ids["bob/fox-1"], "--user", "eve", expect=1)
    assert "no user named 'eve'" in unknown_user.stderr


def test_show_puts_the_clients_charge_next_to_klings_units(cli: Cli) -> None:
    ids = seed(cli)
    settled = fields(cli("tasks", "show", "fox-1", "--user", "alice").output)
    assert settled["reserved"] == "5 credits" and settled["settled"] == "4 credits"
    assert settled["refunded"] == "1 credits" and settled["kling units"] == "0.5"
    refunded = fields(cli("tasks", "show", ids["bob/fox-1"]).output)
    assert refunded["settled"] == "0 credits" and refunded["refunded"] == "5 credits"
    still_open = fields(cli("tasks", "show", "owl-1").output)
    assert still_open["reserved"] == "2.5 credits" and still_open["settled"].startswith("-")
    assert still_open["kling units"] == ""


def test_list_shows_user_names(cli: Cli) -> None:
    ids = seed(cli)
    lines = {line.split()[0]: line.split() for line in cli("tasks", "list").output.splitlines()[2:]}
    assert lines[ids["alice/owl-1"]][1] == "alice" and lines[ids["bob/fox-1"]][1] == "bob"


def test_list_refuses_an_unknown_status_naming_the_allowed_ones(cli: Cli) -> None:
    seed(cli)
    result = cli("tasks", "list", "--status", "bogus", expect=2)
    text = " ".join(result.output.replace("│", " ").split())  # unwrapped from the error box
    assert "'--status': 'bogus' is not a task status" in text
    assert "(allowed: queued, submitted, processing, succeed, failed, rejected)" in text
    assert "Traceback" not in result.output
    failed = cli("tasks", "list", "--status", "failed").output.splitlines()
    assert len(failed) == 3  # header, rule, bob's task


def test_a_models_file_with_an_unknown_mode_is_refused_in_one_line(cli: Cli) -> None:
    models = cli.tmp_path / "models.json"
    models.write_text('{"kling-v3": {"modes": ["std", "pro", "8k"]}}')
    result = cli("users", "list", expect=None, KGW_MODELS_FILE=str(models))
    assert result.exit_code != 0
    (line,) = result.stderr.strip().splitlines()
    assert "KGW_MODELS_FILE" in line and "'8k'" in line and "Traceback" not in result.output
