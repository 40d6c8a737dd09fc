"""The webhook worker end to end: real task flows (gateway + simulator on the ManualClock) record
events, the worker posts them to a real loopback receiver that verifies every signature with
``standardwebhooks``.

The verifier checks ``webhook-timestamp`` against the real wall clock (±5 minutes); the ManualClock
starts at real "now", so tests that verify keep their clock advances well under five minutes.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError

from kling_gateway.domain.schedule import webhook_retry_delay
from kling_gateway.services.webhooks import deliveries, redeliver, rotate_secret, user_secret
from kling_gateway.storage.deliveries import Delivery
from kling_gateway.worker.webhooks import WebhookWorker
from tests.conftest import Env, both_databases

ALLOW_LOOPBACK = {"outbound_allow": "127.0.0.1"}


database_url = both_databases


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return dict(ALLOW_LOOPBACK)


@dataclass
class Hit:
    headers: dict[str, str]
    body: bytes
    answered: int
    verified: bool


@dataclass
class Receiver:
    """A client's callback endpoint on 127.0.0.1. Answers ``fail_status`` to the first
    ``fail_times`` requests of each webhook-id, then 200 to any request whose signature verifies
    (400 otherwise)."""

    secret: str | None = None
    fail_times: int = 0
    fail_status: int = 500
    delay: float = 0.0
    hits: list[Hit] = field(default_factory=list)
    elsewhere: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)
    hang: bool = False
    base_url: str = ""
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"{self.base_url}/hook"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        app.router.add_post("/elsewhere", self._elsewhere)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _hook(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = dict(request.headers)
        if self.hang:
            await self.release.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        verified = self.verify(body, headers)
        event = headers.get("webhook-id", "")
        tries = sum(1 for h in self.hits if h.headers.get("webhook-id") == event)
        status = self.fail_status if tries < self.fail_times else 200 if verified else 400
        self.hits.append(Hit(headers, body, status, verified))
        if 300 <= status < 400:
            raise web.HTTPFound(f"{self.base_url}/elsewhere")
        return web.Response(status=status, text="ok" if status == 200 else "no")

    async def _elsewhere(self, request: web.Request) -> web.StreamResponse:
        self.elsewhere += 1
        return web.Response(text="ok")

    def verify(self, body: bytes, headers: dict[str, str]) -> bool:
        if self.secret is None:
            return False
        try:
            Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError:
            return False
        return True

    def delivered(self) -> dict[str, int]:
        """Successful (2xx) receptions per webhook-id."""
        out: dict[str, int] = {}
        for h in self.hits:
            if 200 <= h.answered < 300:
                out[h.headers["webhook-id"]] = out.get(h.headers["webhook-id"], 0) + 1
        return out


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    try:
        yield r
    finally:
        await r.stop()


@pytest.fixture
async def worker(env: Env) -> AsyncIterator[WebhookWorker]:
    w = WebhookWorker(env.gw, rng=random.Random(7))
    try:
        yield w
    finally:
        await w.aclose()


async def alice_secret(env: Env) -> str:
    alice = await env.gw.accounts.get_user("alice")
    assert alice is not None
    return await user_secret(env.gw, alice.id)


async def task_with_events(env: Env, url: str, ext: str | None = None, seconds: float = 8) -> str:
    """A task created with ``callback_url`` and run to ``succeed``: three events (submitted,
    processing, succeed) are queued."""
    body: dict[str, Any] = {"model_name": "kling-v1", "prompt": "a fox", "callback_url": url}
    if ext:
        body["external_task_id"] = ext
    resp = await env.create(body)
    assert resp.status_code == 200, resp.text
    await env.run_until_idle(seconds)
    return str(resp.json()["data"]["task_id"])


async def rows(env: Env, task_id: str) -> list[Delivery]:
    return await deliveries(env.gw).for_task(task_id)


async def drive(env: Env, worker: WebhookWorker, seconds: float, step: float = 1.0) -> None:
    """Advance the clock in steps, letting the worker send after each one."""
    await worker.run_once()
    elapsed = 0.0
    while elapsed < seconds:
        env.clock.advance(step)
        elapsed += step
        await worker.run_once()


async def test_every_event_is_delivered_once_signed_in_klings_shape(
    env: Env, receiver: Receiver, worker: WebhookWorker
) -> None:
    receiver.secret = await alice_secret(env)
    task_id = await task_with_events(env, receiver.url, ext="client-7")
    assert await worker.run_once() == 3
    assert await worker.run_once() == 0

    assert [h.verified for h in receiver.hits] == [True, True, True]
    bodies = [orjson.loads(h.body) for h in receiver.hits]
    assert sorted(b["task_status"] for b in bodies) == ["processing", "submitted", "succeed"]
    for b, h in zip(bodies, receiver.hits, strict=True):
        assert "code" not in b and "data" not in b  # the bare task object, no envelope
        assert b["task_id"] == task_id
        assert b["task_info"] == {"external_task_id": "client-7"}
        assert h.headers["Content-Type"] == "application/json; charset=utf-8"
        assert h.headers["User-Agent"].startswith("kling-gateway/")
        assert h.headers["webhook-timestamp"] == str(int(env.clock()))
        assert h.headers["webhook-signature"].startswith("v1,")
    upstream_ids = {t.task_id for t in env.sim.store.tasks.values()}
    assert not any(u in h.body.decode() for u in upstream_ids for h in receiver.hits)
    succeed = next(b for b in bodies if b["task_status"] == "succeed")
    assert succeed["task_result"]["videos"][0]["url"].endswith(".mp4")

    stored = await rows(env, task_id)
    assert {d.id for d in stored} == {h.headers["webhook-id"] for h in receiver.hits}
    for d in stored:
        assert (d.status, d.attempts, d.last_status_code, d.next_attempt_at, d.lease_until) == (
            "delivered",
            1,
            200,
            None,
            None,
        )
        assert d.delivered_at == env.gw.now_ms()


async def test_a_receiver_failing_n_times_gets_exactly_one_successful_delivery_per_event(
    env: Env, receiver: Receiver, worker: WebhookWorker
) -> None:
    receiver.secret = await alice_secret(env)
    receiver.fail_times = 3
    task_id = await task_with_events(env, receiver.url)
    await drive(env, worker, 120)

    delivered = receiver.delivered()
    stored = await rows(env, task_id)
    assert delivered == {d.id: 1 for d in stored}
    assert all(
        h.verified for h in receiver.hits
    )  # failures were answered by choice, not bad signatures
    log = await deliveries(env.gw).attempts_for_task(task_id)
    for d in stored:
        assert d.status == "delivered" and d.attempts == 4
        assert [a.status_code for a in log[d.id]] == [500, 500, 500, 200]
        assert [a.error for a in log[d.id]] == ["HTTP 500"] * 3 + [None]
    assert await worker.run_once() == 0


async def test_retries_wait_for_the_backoff(
    env: Env, receiver: Receiver, worker: WebhookWorker
) -> None:
    receiver.secret = await alice_secret(env)
    receiver.fail_times = 99
    task_id = await task_with_events(
        env, receiver.url, seconds=0
    )  # the create itself: one event, submitted
    store = deliveries(env.gw)
    for attempt in range(1, 5):
        before = env.gw.now_ms()
        assert await worker.run_once() == 1
        (d,) = await rows(env, task_id)
        assert d.attempts == attempt and d.status == "pending"
        step_ms = webhook_retry_delay(attempt) * 1000
        assert d.next_attempt_at is not None
        assert before + step_ms / 2 <= d.next_attempt_at <= before + step_ms
        env.clock.advance((d.next_attempt_at - before) / 1000 - 0.5)
        assert await worker.run_once() == 0  # not due yet
        env.clock.advance(0.5)
    assert await worker.run_once() == 1
    attempts = await store.attempts(d.id)
    gaps = [b.attempted_at - a.attempted_at for a, b in itertools.pairwise(attempts)]
    assert all(g >= 2500 * 2**i for i, g in enumerate(gaps)), gaps


@pytest.mark.parametrize("settings_overrides", [{**ALLOW_LOOPBACK, "webhook_max_age_seconds": 60}])
async def test_gives_up_after_max_age(env: Env, receiver: Receiver, worker: WebhookWorker) -> None:
    receiver.secret = await alice_secret(env)
    receiver.fail_times, receiver.fail_status = 10_000, 503
    task_id = await task_with_events(env, receiver.url, seconds=0)
    (d,) = await rows(env, task_id)
    await drive(env, worker, 150)

    (d,) = await rows(env, task_id)
    assert d.status == "failed" and d.next_attempt_at is None and d.delivered_at is None
    assert d.last_status_code == 503
    attempts = await deliveries(env.gw).attempts(d.id)
    assert len(attempts) == d.attempts >= 4
    assert (
        attempts[-1].attempted_at == d.created_at + 60_000
    )  # the last retry lands on the deadline
    assert len(receiver.hits) == d.attempts
    env.clock.advance(3600)
    assert await worker.run_once() == 0


async def test_redirects_are_not_followed(
    env: Env, receiver: Receiver, worker: WebhookWorker
) -> None:
    receiver.secret = await alice_secret(env)
    receiver.fail_times, receiver.fail_status = 1, 302
    task_id = await task_with_events(env, receiver.url, seconds=0)
    assert await worker.run_once() == 1
    (d,) = await rows(env, task_id)
    assert (d.status, d.last_status_code, d.last_error) == ("pending", 302, "HTTP 302")
    assert receiver.elsewhere == 0


@pytest.mark.parametrize("settings_overrides", [{**ALLOW_LOOPBACK, "webhook_timeout_seconds": 0.2}])
async def test_a_slow_receiver_times_out_and_is_retried(
    env: Env, receiver: Receiver, worker: WebhookWorker
) -> None:
    receiver.secret = await alice_secret(env)
    receiver.hang = True
    task_id = await task_with_events(env, receiver.url, seconds=0)
    assert await worker.run_once() == 1
    (d,) = await rows(env, task_id)
    assert d.status == "pending" and d.last_status_code is None
    assert d.last_error == "timed out after 0.2 s"
    (a,) = await deliveries(env.gw).attempts(d.id)
    assert 150 <= a.latency_ms < 2000


async def test_connection_refused_is_retried(env: Env, worker: WebhookWorker) -> None:
    closed = Receiver()
    await closed.start()
    url = closed.url
    await closed.stop()  # nothing listens on that port any more
    task_id = await task_with_events(env, url, seconds=0)
    assert await worker.run_once() == 1
    (d,) = await rows(env, task_id)
    assert d.status == "pending" and d.last_status_code is None
    assert d.last_error is not None and "Connect" in d.last_error


async def test_two_workers_never_send_the_same_event_twice(env: Env, receiver: Receiver) -> None:
    receiver.secret = await alice_secret(env)
    receiver.delay = 0.02
    for i in range(4):
        await env.create(
            {"model_name": "kling-v1", "prompt": f"p{i}", "callback_url": receiver.url}
        )
    await env.run_until_idle(8)
    a, b = WebhookWorker(env.gw, rng=random.Random(1)), WebhookWorker(env.gw, rng=random.Random(2))
    try:
        counts = [*await asyncio.gather(a.run_once(), b.run_once())]
        counts += await asyncio.gather(a.run_once(), b.run_once())
    finally:
        await a.aclose()
        await b.aclose()
    assert sum(counts) == 12
    assert len(receiver.hits) == 12 and set(receiver.delivered().values()) == {1}
    assert len(receiver.delivered()) == 12


async def test_redeliver_sends_the_same_event_again(
    env: Env, receiver: Receiver, worker: WebhookWorker
) -> None:
    receiver.secret = await alice_secret(env)
    task_id = await task_with_events(env, receiver.url, seconds=0)
    assert await worker.run_once() == 1
    (d,) = await rows(env, task_id)
    assert await worker.run_once() == 0
    env.clock.advance(5)
    queued = await redeliver(env.gw, d.id)
    assert queued.status == "pending" and queued.next_attempt_at == env.gw.now_ms()
    assert await worker.run_once() == 1
    assert [h.headers["webhook-id"] for h in receiver.hits] == [d.id, d.id]
    assert all(h.verified for h in receiver.hits)
    (d,) = await rows(env, task_id)
    assert d.status == "delivered" and d.attempts == 2


async def test_rotated_secret_signs_from_the_next_send(
    env: Env, receiver: Receiver, worker: WebhookWorker
) -> None:
    old = await alice_secret(env)
    alice = await env.gw.accounts.get_user("alice")
    assert alice is not None
    new = await rotate_secret(env.gw, alice.id)
    assert new != old
    receiver.secret = new
    await task_with_events(env, receiver.url, seconds=0)
    assert await worker.run_once() == 1
    hit = receiver.hits[0]
    assert hit.verified
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(hit.body, hit.headers)


async def test_latency_is_recorded(env: Env, receiver: Receiver, worker: WebhookWorker) -> None:
    receiver.secret = await alice_secret(env)
    receiver.delay = 0.05
    task_id = await task_with_events(env, receiver.url, seconds=0)
    assert await worker.run_once() == 1
    (d,) = await rows(env, task_id)
    (a,) = await deliveries(env.gw).attempts(d.id)
    assert a.status_code == 200 and a.error is None and a.latency_ms >= 50
    assert a.attempted_at == env.gw.now_ms()


async def test_run_loop_delivers_and_stops(env: Env, receiver: Receiver) -> None:
    receiver.secret = await alice_secret(env)
    task_id = await task_with_events(env, receiver.url)
    w = WebhookWorker(env.gw, idle_seconds=0.01)
    stop = asyncio.Event()
    loop_task = asyncio.create_task(w.run(stop))
    for _ in range(200):
        if len(receiver.hits) >= 3:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(loop_task, 5)
    assert {d.status for d in await rows(env, task_id)} == {"delivered"}


async def test_tasks_without_callback_url_send_nothing(env: Env, worker: WebhookWorker) -> None:
    await env.create({"model_name": "kling-v1", "prompt": "x"})
    await env.run_until_idle(8)
    assert await worker.run_once() == 0


def test_retry_delay_doubles_with_jitter_and_stays_capped() -> None:
    assert [webhook_retry_delay(n) for n in range(0, 6)] == [5.0, 5.0, 10.0, 20.0, 40.0, 80.0]
    assert webhook_retry_delay(10_000) == 3600.0
    assert webhook_retry_delay(3, base=1.0, cap=3.0) == 3.0
    rng = random.Random(3)
    for n in range(1, 20):
        step = webhook_retry_delay(n)
        draws = [webhook_retry_delay(n, rng=rng) for _ in range(50)]
        assert all(step / 2 <= x <= step for x in draws)
        assert len(set(draws)) > 1  # jittered
    assert webhook_retry_delay(4, rng=random.Random(9)) == webhook_retry_delay(
        4, rng=random.Random(9)
    )
