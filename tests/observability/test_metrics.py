"""``/metrics`` on the real app and simulator: families count what they say; labels stay bounded."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from kling_gateway.http.app import create_app
from kling_gateway.observability import store_metrics
from kling_gateway.observability.endpoint import Observability
from kling_gateway.observability.store_metrics import StoreCollector, StoreSnapshot
from kling_gateway.worker.webhooks import WebhookWorker
from tests.conftest import TEXT2VIDEO, Env, make_settings
from tests.observability.support import names, scrape, value
from tests.postgres import run_database

BODY = {"model_name": "kling-v1", "prompt": "a lighthouse in fog"}
GET_ROUTE = TEXT2VIDEO + "/{task_id}"


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Both databases: the scrape-time gauges are hand-written SQL."""
    if request.param == "postgres":
        return await run_database()
    return f"sqlite+aiosqlite:///{tmp_path}/gw.db"


async def test_requests_are_labelled_by_route_template_not_path(env: Env) -> None:
    created = await env.create(BODY)
    task_id = created.json()["data"]["task_id"]
    assert (await env.get(task_id)).status_code == 200
    assert (await env.get("no-such-task")).status_code == 404
    assert (await env.client.get("/definitely/not/a/route")).status_code == 404
    assert (await env.client.request("BREW", TEXT2VIDEO)).status_code in (404, 405)

    samples = await scrape(env)
    requests = "kgw_http_requests_total"
    assert value(samples, requests, method="POST", route=TEXT2VIDEO, code="200") == 1
    assert value(samples, requests, method="GET", route=GET_ROUTE, code="200") == 1
    assert value(samples, requests, method="GET", route=GET_ROUTE, code="404") == 1
    assert value(samples, requests, method="GET", route="unmatched", code="404") == 1
    assert any(labels >= {("method", "OTHER")} for name, labels in samples if name == requests)
    latency = "kgw_http_request_duration_seconds_count"
    assert value(samples, latency, method="GET", route=GET_ROUTE) == 2
    assert value(samples, latency, method="POST", route=TEXT2VIDEO) == 1
    # No raw path, id or made-up method ever becomes a label value.
    label_values = {v for _, labels in samples for _, v in labels}
    assert not {task_id, "no-such-task", "/definitely/not/a/route", "BREW"} & label_values


async def test_task_gauges_transitions_and_upstream_calls(env: Env) -> None:
    ids = [(await env.create(BODY)).json()["data"]["task_id"] for _ in range(2)]
    samples = await scrape(env)
    assert value(samples, "kgw_tasks", status="submitted") == 2
    assert (
        value(samples, "kgw_tasks", status="succeed") == 0
    )  # every status is present, zeros included
    assert (
        value(samples, "kgw_task_transitions_total", from_status="queued", to_status="submitted")
        == 2
    )
    assert (
        value(samples, "kgw_upstream_calls_total", account="simulator", op="create", outcome="ok")
        == 2
    )

    await env.run_until_idle(10)
    assert [(await env.get(i)).json()["data"]["task_status"] for i in ids] == ["succeed", "succeed"]
    samples = await scrape(env)
    assert value(samples, "kgw_tasks", status="succeed") == 2
    assert value(samples, "kgw_tasks", status="submitted") == 0
    into_succeed = sum(
        v
        for (name, labels), v in samples.items()
        if name == "kgw_task_transitions_total" and ("to_status", "succeed") in labels
    )
    assert into_succeed == 2
    queries = value(
        samples, "kgw_upstream_calls_total", account="simulator", op="query", outcome="ok"
    )
    assert queries is not None and queries >= 2
    count = value(
        samples, "kgw_upstream_call_duration_seconds_count", account="simulator", op="create"
    )
    assert count == 2
    assert value(samples, "kgw_poll_due_tasks") == 0
    assert value(samples, "kgw_poll_lag_seconds") == 0


async def test_upstream_outcomes_absent_and_ambiguous(env: Env) -> None:
    env.sim.config.create_error_rate = 1.0
    env.sim.config.create_error_code = 1302
    assert (await env.create(BODY)).status_code == 429
    env.sim.config.create_error_rate = 0.0
    env.sim.config.ambiguous_error_rate = 1.0
    assert (await env.create(BODY)).status_code == 200
    samples = await scrape(env)
    calls = "kgw_upstream_calls_total"
    assert value(samples, calls, account="simulator", op="create", outcome="absent") == 1
    assert value(samples, calls, account="simulator", op="create", outcome="ambiguous") == 1
    assert value(samples, "kgw_tasks", status="rejected") == 1


async def test_poll_lag_is_how_late_the_oldest_due_task_is(env: Env) -> None:
    task_id = (await env.create(BODY)).json()["data"]["task_id"]
    record = await env.gw.tasks.get(task_id)
    assert record is not None and record.next_poll_at is not None
    env.clock.advance(
        (record.next_poll_at - env.gw.now_ms()) / 1000 + 7
    )  # 7 s past due, nobody polled
    samples = await scrape(env)
    assert value(samples, "kgw_poll_due_tasks") == 1
    assert value(samples, "kgw_poll_lag_seconds") == pytest.approx(7, abs=0.01)


class FlakySender:
    def __init__(self, status: int) -> None:
        self.status = status

    async def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:  # noqa: ASYNC109
        return self.status


async def test_webhook_attempts_retries_and_queue(env: Env) -> None:
    body = {**BODY, "callback_url": "http://127.0.0.1:9/hook?token=client-secret"}
    assert (await env.create(body)).status_code == 200
    await env.run_until_idle(10)  # submitted, processing, succeed: three events queued
    samples = await scrape(env)
    assert value(samples, "kgw_webhook_pending") == 3

    sender = FlakySender(503)
    worker = WebhookWorker(env.gw, sender=sender, rng=random.Random(1))
    assert await worker.run_once() == 3
    samples = await scrape(env)
    assert value(samples, "kgw_webhook_attempts_total", result="retry") == 3
    assert value(samples, "kgw_webhook_pending") == 3

    sender.status = 200
    env.clock.advance(3600)
    assert await worker.run_once() == 3
    samples = await scrape(env)
    assert value(samples, "kgw_webhook_attempts_total", result="delivered") == 3
    assert value(samples, "kgw_webhook_attempt_duration_seconds_count") == 6
    assert value(samples, "kgw_webhook_pending") == 0
    assert value(samples, "kgw_webhook_lag_seconds") == 0


async def test_ledger_totals_when_the_table_exists_and_skipped_when_not(env: Env) -> None:
    users = {u.name: u.id for u in await env.gw.accounts.list_users()}
    before = await scrape(env)  # the fixture may already have credited its users
    entries_before = value(before, "kgw_ledger_entries", reason="credit") or 0
    amount_before = value(before, "kgw_ledger_amount_micro", reason="credit") or 0
    async with env.gw.engine.begin() as conn:
        for amount in (5_000_000, 2_500_000):
            await conn.execute(
                text(
                    "INSERT INTO ledger_entries (user_id, kind, reason, amount_micro, created_at) "
                    "VALUES (:u, 'credit', 'credit', :a, 0)"
                ),
                {"u": users["alice"], "a": amount},
            )
    samples = await scrape(env)
    assert value(samples, "kgw_ledger_entries", reason="credit") == entries_before + 2
    assert value(samples, "kgw_ledger_amount_micro", reason="credit") == amount_before + 7_500_000

    async with env.gw.engine.begin() as conn:
        await conn.execute(text("DROP TABLE ledger_entries"))
    samples = await scrape(env)
    assert not {"kgw_ledger_entries", "kgw_ledger_amount_micro"} & names(samples)
    assert value(samples, "kgw_store_read_ok") == 1
    assert value(samples, "kgw_tasks", status="queued") == 0


async def test_a_failed_database_read_keeps_the_process_metrics(
    env: Env, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: Any) -> StoreSnapshot:
        raise OSError("database is gone")

    monkeypatch.setattr(store_metrics, "read_snapshot", broken)
    await env.create(BODY)
    samples = await scrape(env)
    assert value(samples, "kgw_store_read_ok") == 0
    assert "kgw_tasks" not in names(samples)
    assert (
        value(samples, "kgw_http_requests_total", method="POST", route=TEXT2VIDEO, code="200") == 1
    )
    assert "reading the database-derived gauges failed" in caplog.text


async def test_concurrent_scrapes_share_one_database_read(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    release = asyncio.Event()

    async def slow(*args: Any) -> StoreSnapshot:
        nonlocal calls
        calls += 1
        await release.wait()
        return StoreSnapshot(poll_due=calls)

    monkeypatch.setattr(store_metrics, "read_snapshot", slow)
    collector = StoreCollector()
    waiters = [asyncio.ensure_future(collector.refresh(None, 0)) for _ in range(5)]  # type: ignore[arg-type]
    await asyncio.sleep(0)
    release.set()
    assert {s.poll_due for s in await asyncio.gather(*waiters)} == {1}
    assert calls == 1
    await collector.refresh(None, 0)  # type: ignore[arg-type]
    assert calls == 2  # a later scrape reads afresh


def test_each_app_has_its_own_registry(tmp_path: Path) -> None:
    apps = [create_app(make_settings(tmp_path / str(i)), run_poller=False) for i in range(2)]
    first, second = (app.state.observability for app in apps)
    assert isinstance(first, Observability) and first.registry is not second.registry
    first.http.observe("GET", "/x", 200, 0.001)
    assert (
        first.registry.get_sample_value(
            "kgw_http_requests_total", {"method": "GET", "route": "/x", "code": "200"}
        )
        == 1
    )
    assert (
        second.registry.get_sample_value(
            "kgw_http_requests_total", {"method": "GET", "route": "/x", "code": "200"}
        )
        is None
    )
