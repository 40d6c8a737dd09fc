"""Several upstream accounts: selection, failover that never submits twice, cooldowns, key rotation.

Two simulators (A, the seeded "simulator" account, and B, added as account "b") run in-process on
one clock; a host router sends each account's calls to its own simulator, so faults are injected per
account and each simulator's store says exactly which tasks it holds.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from kling_gateway.http.app import create_app
from kling_gateway.services import admin, channel_admin, money
from kling_gateway.services.channels import Channel
from kling_gateway.upstream.simulator import (
    ManualClock,
    Simulator,
    SimulatorConfig,
    create_simulator_app,
)
from tests.conftest import Env, TimeoutASGITransport, make_settings
from tests.postgres import reset_schema

BODY = {"model_name": "kling-v2-6", "prompt": "a fox", "duration": "5"}
B_URL = "http://127.0.0.2:8001"


class HostRouter(httpx.AsyncBaseTransport):
    """One transport per host; a host mapped to ``None`` refuses connections (an unreachable
    account)."""

    def __init__(self, routes: dict[str, httpx.AsyncBaseTransport | None]) -> None:
        self.routes = routes
        self.log: list[tuple[str, str, str]] = []  # (host, method, path)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        self.log.append((host, request.method, request.url.path))
        target = self.routes.get(host)
        if target is None:
            raise httpx.ConnectError("connection refused", request=request)
        return await target.handle_async_request(request)


@dataclass
class Duo:
    env: Env
    a: Simulator
    b: Simulator
    router: HostRouter

    def held(self, sim: Simulator) -> list[str]:
        """External ids (our public task ids) of every task a simulator holds."""
        return [
            t.spec.external_task_id for t in sim.store.tasks.values() if t.spec.external_task_id
        ]

    def channel(self, name: str) -> Channel:
        return next(c for c in self.env.gw.upstream.all() if c.name == name)


@pytest.fixture
async def duo(tmp_path: Path, clock: ManualClock, both_databases: str) -> AsyncIterator[Duo]:
    if both_databases.startswith("postgresql"):
        await reset_schema(both_databases)
    settings = make_settings(tmp_path, both_databases, channel_probe_seconds=0)
    apps = [
        create_simulator_app(
            SimulatorConfig(submitted_seconds=1.0, processing_seconds=3.0), clock=clock
        )
        for _ in "ab"
    ]
    ta, tb = (TimeoutASGITransport(app, settings.upstream_read_timeout) for app in apps)
    router = HostRouter({"127.0.0.1": ta, "127.0.0.2": tb})
    app = create_app(settings, transport=router, clock=clock, run_poller=False)
    sa, sb = (a.router.lifespan_context(a) for a in apps)
    async with sa, sb, app.router.lifespan_context(app):
        gw = app.state.gateway
        gw.upstream._rng = random.Random(5)
        await channel_admin.add(gw, "b", B_URL, access_key="sim-ak", secret_key="sim-sk")
        user = await admin.create_user(gw, "alice")
        await money.adjust(gw, user.id, "1000000", debit=False, note="test funds")
        issued = await admin.create_key(gw, "alice")
        assert issued.api_key is not None
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gw"
        ) as client:
            env = Env(gw, apps[0].state.sim, client, clock, ta, {"alice": issued.api_key})
            yield Duo(env, apps[0].state.sim, apps[1].state.sim, router)


async def _task(duo: Duo, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    res = await duo.env.create(body or BODY)
    return res.status_code, res.json()


async def _account_of(duo: Duo, task_id: str) -> str:
    record = await duo.env.gw.tasks.get(task_id)
    assert record is not None
    return next(
        c.name for c in duo.env.gw.upstream.all() if c.account_id == record.upstream_account_id
    )


async def test_highest_priority_tier_takes_all_traffic(duo: Duo) -> None:
    await channel_admin.update(duo.env.gw, "b", priority=5)
    for _ in range(6):
        status, body = await _task(duo)
        assert status == 200, body
    assert len(duo.held(duo.b)) == 6 and duo.held(duo.a) == []


async def test_weights_split_traffic_inside_a_tier(duo: Duo) -> None:
    await channel_admin.update(duo.env.gw, "b", weight=3)
    picks = [(await duo.env.gw.upstream.pick("kling-v2-6")) for _ in range(2000)]
    share_b = sum(1 for c in picks if c is not None and c.name == "b") / len(picks)
    assert 0.70 < share_b < 0.80


async def test_busy_account_fails_over_and_nothing_is_submitted_twice(duo: Duo) -> None:
    await channel_admin.update(duo.env.gw, "b", priority=-1)  # A first
    duo.a.config.create_error_rate, duo.a.config.create_error_code = 1.0, 1303
    status, body = await _task(duo)
    assert status == 200, body
    task_id = body["data"]["task_id"]
    assert duo.held(duo.b) == [task_id] and duo.held(duo.a) == []
    assert await _account_of(duo, task_id) == "b"
    await duo.env.run_until_idle(8)
    got = (await duo.env.get(task_id)).json()["data"]
    assert got["task_status"] == "succeed"


async def test_unreachable_account_is_skipped_until_it_answers_again(duo: Duo) -> None:
    await channel_admin.update(duo.env.gw, "b", priority=-1)
    duo.router.routes["127.0.0.1"] = None
    status, body = await _task(duo)
    assert status == 200 and duo.held(duo.b) == [body["data"]["task_id"]]
    calls_to_a = sum(
        1 for host, method, _ in duo.router.log if host == "127.0.0.1" and method == "POST"
    )
    status, _ = await _task(duo)
    assert status == 200
    # benched for a while: the second create did not try A at all
    assert (
        sum(1 for host, m, _ in duo.router.log if host == "127.0.0.1" and m == "POST") == calls_to_a
    )
    assert "unreachable" in (duo.channel("simulator").benched(duo.env.gw.now_ms()) or "")


@pytest.mark.parametrize("code", [1101, 1102])
async def test_balance_refusal_benches_the_account_on_every_node(duo: Duo, code: int) -> None:
    await channel_admin.update(duo.env.gw, "b", priority=-1)
    duo.a.config.create_error_rate, duo.a.config.create_error_code = 1.0, code
    status, body = await _task(duo)
    assert status == 200 and duo.held(duo.b) == [body["data"]["task_id"]]
    stored = {a.name: a for a in await duo.env.gw.upstreams.accounts()}
    assert (stored["simulator"].cooldown_until or 0) > duo.env.gw.now_ms()
    assert str(code) in (stored["simulator"].cooldown_reason or "")
    view = await channel_admin.show(duo.env.gw, "simulator")
    assert view["state"].startswith("cooling down")
    # the operator's "enable" lifts it
    await channel_admin.update(duo.env.gw, "simulator", enabled=True)
    assert (await channel_admin.show(duo.env.gw, "simulator"))["state"] == "ok"


async def test_cooldown_expires_by_itself(duo: Duo) -> None:
    await channel_admin.update(duo.env.gw, "b", priority=-1)
    duo.a.config.create_error_rate, duo.a.config.create_error_code = 1.0, 1102
    assert (await _task(duo))[0] == 200
    duo.a.config.create_error_rate = 0.0
    duo.env.clock.advance(duo.env.gw.settings.channel_cooldown_seconds + 1)
    status, body = await _task(duo)
    assert status == 200 and body["data"]["task_id"] in duo.held(duo.a)


async def test_content_refusal_is_the_clients_answer_not_a_failover(duo: Duo) -> None:
    await channel_admin.update(duo.env.gw, "b", priority=-1)
    duo.a.config.create_error_rate, duo.a.config.create_error_code = 1.0, 1301
    status, body = await _task(duo)
    assert status == 400 and body["code"] == 1301
    assert duo.held(duo.b) == []
    assert not any(host == "127.0.0.2" for host, _, _ in duo.router.log)


async def test_ambiguous_create_is_looked_up_on_the_same_account_first(duo: Duo) -> None:
    """5000 after the task was made: the lookup on A finds it; B is never asked."""
    await channel_admin.update(duo.env.gw, "b", priority=-1)
    duo.a.config.ambiguous_error_rate = 1.0
    status, body = await _task(duo)
    task_id = body["data"]["task_id"]
    assert status == 200 and duo.held(duo.a) == [task_id] and duo.held(duo.b) == []
    a_calls = [(m, p) for host, m, p in duo.router.log if host == "127.0.0.1"]
    assert a_calls[-1] == ("GET", f"/v1/videos/text2video/{task_id}")
    assert not any(host == "127.0.0.2" for host, _, _ in duo.router.log)


async def test_ambiguous_then_confirmed_absent_moves_on(duo: Duo) -> None:
    """5000 before anything was made: A confirms it holds nothing, only then B gets the create."""
    await channel_admin.update(duo.env.gw, "b", priority=-1)
    duo.a.config.create_error_rate, duo.a.config.create_error_code = 1.0, 5000
    status, body = await _task(duo)
    task_id = body["data"]["task_id"]
    assert status == 200 and duo.held(duo.b) == [task_id] and duo.held(duo.a) == []
    order = [(h, m) for h, m, _ in duo.router.log if h in ("127.0.0.1", "127.0.0.2")]
    assert order[-3:] == [("127.0.0.1", "POST"), ("127.0.0.1", "GET"), ("127.0.0.2", "POST")]
    assert await _account_of(duo, task_id) == "b"


async def test_ambiguous_and_lookup_fails_stays_with_the_first_account(duo: Duo) -> None:
    """Nobody can say whether A made it: the task is accepted, stays on A, B is never called."""
    await channel_admin.update(duo.env.gw, "b", priority=-1)
    duo.a.config.create_error_rate, duo.a.config.create_error_code = 1.0, 5000
    duo.a.config.get_error_rate = 1.0
    status, body = await _task(duo)
    task_id = body["data"]["task_id"]
    assert status == 200 and body["data"]["task_status"] == "submitted"
    assert await _account_of(duo, task_id) == "simulator"
    assert not any(host == "127.0.0.2" for host, _, _ in duo.router.log)
    duo.a.config.create_error_rate = duo.a.config.get_error_rate = 0.0
    await duo.env.run_until_idle(12)
    assert duo.held(duo.a) == [task_id] and duo.held(duo.b) == []
    assert (await duo.env.get(task_id)).json()["data"]["task_status"] == "succeed"


async def test_disabled_account_takes_no_new_work_but_its_tasks_finish(duo: Duo) -> None:
    await channel_admin.update(duo.env.gw, "b", priority=-1)
    status, body = await _task(duo)
    first = body["data"]["task_id"]
    assert duo.held(duo.a) == [first]
    await channel_admin.update(duo.env.gw, "simulator", enabled=False)
    status, body = await _task(duo)
    assert status == 200 and duo.held(duo.b) == [body["data"]["task_id"]]
    await duo.env.run_until_idle(8)
    assert (await duo.env.get(first)).json()["data"]["task_status"] == "succeed"


async def test_per_model_cap_sends_the_overflow_elsewhere(duo: Duo) -> None:
    await channel_admin.update(duo.env.gw, "simulator", priority=1, caps={"kling-v2-6": 2})
    ids = [(await _task(duo))[1]["data"]["task_id"] for _ in range(4)]
    assert sorted(duo.held(duo.a)) == sorted(ids[:2]) and sorted(duo.held(duo.b)) == sorted(ids[2:])


async def test_everything_busy_or_cooling_answers_without_storing_anything(duo: Duo) -> None:
    gw = duo.env.gw
    await channel_admin.update(gw, "simulator", caps={"*": 1})
    await channel_admin.update(gw, "b", caps={"*": 1})
    assert (await _task(duo))[0] == 200 and (await _task(duo))[0] == 200
    status, body = await _task(duo)
    assert status == 429 and body["code"] == 1303 and "capacity" in body["message"]
    await channel_admin.update(gw, "simulator", enabled=False)
    await channel_admin.update(gw, "b", enabled=False)
    status, body = await _task(duo)
    assert status == 503 and body["code"] == 5001 and "kling-v2-6" in body["message"]
    assert len(await gw.tasks.list_for_user(1, 0, 10)) == 2


async def test_model_offer_and_mapping_per_account(duo: Duo) -> None:
    gw = duo.env.gw
    await channel_admin.update(gw, "simulator", models=["kling-v3"])
    await channel_admin.update(gw, "b", model_map={"kling-v2-6": "kling-v2-6"})
    status, body = await _task(duo)
    assert status == 200 and duo.held(duo.b) == [body["data"]["task_id"]]
    await channel_admin.update(gw, "b", model_map={"kling-v2-6": "kling-v2-5-turbo"})
    status, body = await _task(duo)
    assert status == 200
    sent = [
        t for t in duo.b.store.tasks.values() if t.spec.external_task_id == body["data"]["task_id"]
    ]
    assert sent and sent[0].spec.model == "kling-v2-5-turbo"


def _iss(request: httpx.Request) -> str:
    token = request.headers["authorization"].removeprefix("Bearer ")
    return str(jwt.decode(token, options={"verify_signature": False})["iss"])


async def test_keys_rotate_and_a_refused_key_sits_out_alone(duo: Duo) -> None:
    gw = duo.env.gw
    duo.a.config.access_keys["ak-two"] = "sk-two-long-enough-secret"
    duo.a.config.account_of["ak-two"] = "sim-ak"  # both keys belong to one Kling account
    await channel_admin.update(gw, "b", enabled=False)
    await channel_admin.add_key(
        gw, "simulator", access_key="ak-two", secret_key="sk-two-long-enough-secret"
    )
    for _ in range(4):
        assert (await _task(duo))[0] == 200
    posts = [r for r in duo.env.upstream.sent if r.method == "POST"]
    assert sorted(_iss(r) for r in posts[-4:]) == ["ak-two", "ak-two", "sim-ak", "sim-ak"]
    del duo.a.config.access_keys["ak-two"]  # revoked at Kling
    for _ in range(3):
        assert (await _task(duo))[0] == 200
    view = await channel_admin.show(gw, "simulator")
    assert view["state"] == "ok"
    cooled = [k for k in view["keys"] if k["cooldown_until"]]
    assert len(cooled) == 1 and "1002" in cooled[0]["cooldown_reason"]
    assert "sk-two" not in str(view) and "sim-sk" not in str(view)


async def test_refresher_resubmits_to_another_account_when_its_own_is_benched(duo: Duo) -> None:
    gw = duo.env.gw
    await channel_admin.update(gw, "b", priority=-1)
    duo.a.config.create_error_rate, duo.a.config.create_error_code = 1.0, 5000
    duo.a.config.get_error_rate = 1.0
    task_id = (await _task(duo))[1]["data"]["task_id"]  # accepted, unconfirmed, on A
    duo.a.config.get_error_rate = 0.0  # A can now confirm it holds nothing…
    await gw.upstream.cool(duo.channel("simulator"), gw.now_ms() + 600_000, "upstream 1102: test")
    await duo.env.run_until_idle(12)  # …and the refresher sends it to B, once
    assert duo.held(duo.b) == [task_id] and duo.held(duo.a) == []
    assert (await duo.env.get(task_id)).json()["data"]["task_status"] == "succeed"


async def test_benched_accounts_show_in_metrics(duo: Duo) -> None:
    await channel_admin.update(duo.env.gw, "b", priority=-1)
    duo.a.config.create_error_rate, duo.a.config.create_error_code = 1.0, 1102
    assert (await _task(duo))[0] == 200
    text = (await duo.env.client.get("/metrics")).text
    assert 'kgw_upstream_account_cooldowns_total{account="simulator",kind="account"} 1.0' in text
    assert 'kgw_upstream_account_usable{account="simulator"} 0.0' in text
    assert 'kgw_upstream_account_usable{account="b"} 1.0' in text


async def test_a_retry_of_a_queued_row_goes_only_to_the_account_that_may_hold_it(duo: Duo) -> None:
    gw = duo.env.gw
    await channel_admin.update(gw, "b", priority=-1)
    duo.a.config.ambiguous_error_rate = 1.0  # A makes the task but the answer is lost…
    duo.a.config.get_error_rate = 1.0  # …and cannot be asked about it right now
    body = {**BODY, "external_task_id": "client-7"}
    first = (await _task(duo, body))[1]["data"]["task_id"]
    assert duo.held(duo.a) == [first]
    await channel_admin.update(gw, "b", priority=9)  # B is now everyone's first choice
    duo.a.config.ambiguous_error_rate = duo.a.config.get_error_rate = 0.0
    status, again = await _task(duo, body)  # the client's retry of the same request
    assert status == 200 and again["data"]["task_id"] == first
    assert (
        duo.held(duo.a) == [first] and duo.held(duo.b) == []
    )  # adopted on A (1201 → lookup), not resent
    record = await gw.tasks.get(first)
    assert record is not None and record.upstream_task_id is not None


class RefusePosts(httpx.AsyncBaseTransport):
    """Answers every create with a Kling refusal, passes reads through: an account that is busy now
    although an earlier send of ours may have made the task."""

    def __init__(self, inner: httpx.AsyncBaseTransport, code: int) -> None:
        self.inner, self.code = inner, code

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            body = {
                "code": self.code,
                "message": "parallel task over resource pack limit",
                "request_id": "r",
            }
            return httpx.Response(429, json=body)
        return await self.inner.handle_async_request(request)


async def test_a_retried_row_refused_as_busy_is_looked_up_before_any_failover(duo: Duo) -> None:
    gw = duo.env.gw
    await channel_admin.update(gw, "b", priority=-1)
    duo.a.config.ambiguous_error_rate = duo.a.config.get_error_rate = 1.0
    body = {**BODY, "external_task_id": "client-8"}
    first = (await _task(duo, body))[1]["data"]["task_id"]  # made on A, unconfirmed
    duo.a.config.ambiguous_error_rate = duo.a.config.get_error_rate = 0.0
    inner = duo.router.routes["127.0.0.1"]
    assert inner is not None
    duo.router.routes["127.0.0.1"] = RefusePosts(inner, 1303)
    status, again = await _task(duo, body)
    assert status == 200 and again["data"]["task_id"] == first
    assert duo.held(duo.a) == [first] and duo.held(duo.b) == []  # A's copy adopted; B never sent it
    record = await gw.tasks.get(first)
    assert record is not None and record.upstream_task_id is not None


async def test_a_client_retry_never_moves_a_row_its_first_request_may_still_create(
    duo: Duo,
) -> None:
    """The retry finds A busy and holding nothing *yet*: the first request may still land there, so
    the retry is answered as accepted and the row stays on A until the refresher's own look."""
    gw = duo.env.gw
    await channel_admin.update(gw, "b", priority=-1)
    duo.a.config.create_error_rate, duo.a.config.create_error_code = 1.0, 5000  # nothing made on A…
    duo.a.config.get_error_rate = 1.0  # …but A cannot say so: accepted, unconfirmed, on A
    body = {**BODY, "external_task_id": "client-9"}
    first = (await _task(duo, body))[1]["data"]["task_id"]
    duo.a.config.get_error_rate = 0.0
    inner = duo.router.routes["127.0.0.1"]
    assert inner is not None
    duo.router.routes["127.0.0.1"] = RefusePosts(inner, 1303)
    before = await gw.tasks.get(first)
    assert before is not None and before.next_poll_at is not None
    status, again = await _task(duo, body)
    assert status == 200 and again["data"]["task_id"] == first
    assert duo.held(duo.a) == [] and duo.held(duo.b) == []
    assert not any(host == "127.0.0.2" for host, _, _ in duo.router.log)
    after = await gw.tasks.get(first)
    assert (
        after is not None
        and after.status == "queued"
        and after.upstream_account_id == before.upstream_account_id
    )
    assert after.next_poll_at is not None and after.next_poll_at >= before.next_poll_at
    await duo.env.run_until_idle(
        12
    )  # the refresher confirms A holds nothing and, A being busy, uses B
    assert duo.held(duo.b) == [first] and duo.held(duo.a) == []
    assert (await duo.env.get(first)).json()["data"]["task_status"] == "succeed"


async def test_a_lone_account_that_was_unreachable_is_still_tried(duo: Duo) -> None:
    """Benching is a preference, not a refusal: with no other account, the next create tries again
    instead of answering 503 for the whole unreachable spell."""
    await channel_admin.update(duo.env.gw, "b", enabled=False)
    inner = duo.router.routes["127.0.0.1"]
    duo.router.routes["127.0.0.1"] = None
    status, body = await _task(duo)
    assert status == 503 and body["code"] == 5001
    assert duo.channel("simulator").benched(duo.env.gw.now_ms()) is not None
    duo.router.routes["127.0.0.1"] = inner  # back a moment later
    status, body = await _task(duo)
    assert status == 200 and duo.held(duo.a) == [body["data"]["task_id"]]


class FailConnectOnce(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner, self.failed = inner, False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self.failed:
            self.failed = True
            raise httpx.ConnectError("connection refused", request=request)
        return await self.inner.handle_async_request(request)


async def test_a_lone_account_refusing_one_connection_gets_the_create_on_a_second_try(
    duo: Duo,
) -> None:
    await channel_admin.update(duo.env.gw, "b", enabled=False)
    inner = duo.router.routes["127.0.0.1"]
    assert inner is not None
    duo.router.routes["127.0.0.1"] = FailConnectOnce(inner)
    status, body = await _task(duo)
    assert status == 200 and duo.held(duo.a) == [body["data"]["task_id"]]
