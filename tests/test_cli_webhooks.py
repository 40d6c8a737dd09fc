"""``kling-gateway webhooks …`` (the ``webhooks_app`` typer group), run in-process with CliRunner
against a temp SQLite DB that a real status change and a real worker pass filled in."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from kling_gateway.cli.webhooks import webhooks_app
from kling_gateway.domain.task import TaskStatus
from kling_gateway.services.admin import create_user
from kling_gateway.services.gateway import build_gateway
from kling_gateway.services.webhooks import delivery_log
from kling_gateway.settings import Settings
from kling_gateway.storage.tasks import TaskRecord
from kling_gateway.upstream.simulator import ManualClock
from kling_gateway.worker.webhooks import WebhookWorker

SECRET_RE = re.compile(r"whsec_[A-Za-z0-9+/=]{30,}")


class FlakySender:
    """500 on the first post of each event, 200 afterwards."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    async def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:  # noqa: ASYNC109
        event = headers["webhook-id"]
        if event in self.seen:
            return 200
        self.seen.add(event)
        return 500


class Cli:
    def __init__(self, tmp_path: Path) -> None:
        self.env = {
            "KGW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
            "KGW_MASTER_KEY_FILE": str(tmp_path / "m.key"),
            "KGW_UPSTREAM": "simulator",
        }
        self.runner = CliRunner()

    def __call__(self, *args: str, expect: int = 0) -> Result:
        result = self.runner.invoke(webhooks_app, list(args), env=self.env)
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
    return Cli(tmp_path)


def task_with_two_attempts(cli: Cli) -> tuple[str, str]:
    """Alice's task moves queued → submitted (one event); the worker fails once, then delivers."""

    async def main() -> tuple[str, str]:
        clock = ManualClock()
        gw = await build_gateway(cli.settings(), clock=clock)
        try:
            alice = await create_user(gw, "alice")
            now = gw.now_ms()
            record = TaskRecord(
                id=gw.ids.mint(now),
                user_id=alice.id,
                key_id=None,
                public_model="kling-v1",
                upstream_model="kling-v1",
                status=TaskStatus.QUEUED.value,
                status_msg="",
                external_task_id="ext-1",
                request_hash="0" * 64,
                request_json="{}",
                callback_url="https://hooks.example.com/k",
                mode="std",
                duration=5,
                sound=False,
                watermark=False,
                upstream_account_id=gw.primary().account_id,
                upstream_task_id=None,
                result_json=None,
                unit_deduction=None,
                created_at=now,
                updated_at=now,
                next_poll_at=now + 1000,
                poll_attempts=0,
            )
            await gw.tasks.insert(record)
            assert await gw.mover.move(
                record, TaskStatus.QUEUED, status="submitted", upstream_task_id="up-1"
            )
            worker = WebhookWorker(gw, sender=FlakySender())
            assert await worker.run_once() == 1
            clock.advance(60)
            assert await worker.run_once() == 1
            (entry,) = await delivery_log(gw, record.id)
            return record.id, entry.delivery.id
        finally:
            await gw.aclose()

    return asyncio.run(main())


def test_log_shows_each_attempt_with_code_and_latency(cli: Cli) -> None:
    task_id, delivery_id = task_with_two_attempts(cli)
    out = cli("log", task_id).output
    assert delivery_id in out and "submitted" in out and "delivered" in out
    attempt_lines = [line for line in out.splitlines() if re.search(r"\d+ ms", line)]
    assert len(attempt_lines) == 2, out
    assert "500" in attempt_lines[0] and "HTTP 500" in attempt_lines[0]
    assert "200" in attempt_lines[1]
    assert all(re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", line) for line in attempt_lines)


def test_log_of_an_unknown_task(cli: Cli) -> None:
    task_id, _ = task_with_two_attempts(cli)
    result = cli("log", "123456", expect=1)
    assert "error:" in result.stderr and "no task" in result.stderr
    assert task_id not in result.output


def test_redeliver(cli: Cli) -> None:
    task_id, delivery_id = task_with_two_attempts(cli)
    out = cli("redeliver", delivery_id).output
    assert delivery_id in out and "queued again" in out and task_id in out
    log = cli("log", task_id).output
    assert "pending" in log
    result = cli("redeliver", "msg_nope", expect=1)
    assert "no delivery" in result.stderr


def test_secret_read_and_rotate(cli: Cli) -> None:
    task_with_two_attempts(cli)  # the worker already created alice's secret to sign with
    first = SECRET_RE.findall(cli("secret", "alice").output)
    assert len(first) == 1
    assert SECRET_RE.findall(cli("secret", "alice").output) == first
    rotated = SECRET_RE.findall(cli("secret", "alice", "--rotate").output)
    assert len(rotated) == 1 and rotated != first
    assert SECRET_RE.findall(cli("secret", "alice").output) == rotated
    result = cli("secret", "carol", expect=1)
    assert "no user 'carol'" in result.stderr
