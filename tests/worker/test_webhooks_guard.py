"""Delivery-time SSRF check: a callback host that resolves to a private address is never contacted,
and the event fails at once instead of being retried for a day."""

from __future__ import annotations

from kling_gateway.netguard import UrlGuard
from kling_gateway.services.webhooks import delivery_log
from kling_gateway.worker.webhooks import WebhookWorker
from tests.conftest import Env


async def test_private_resolution_fails_the_delivery_without_retry(env: Env) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["10.0.0.7"] if host == "hooks.rebind.example" else ["93.184.216.34"]

    env.gw.guard = UrlGuard(allow=["127.0.0.1"], resolver=resolver)
    resp = await env.create(
        {"model_name": "kling-v1", "prompt": "x", "callback_url": "http://hooks.rebind.example/h"}
    )
    task_id = resp.json()["data"]["task_id"]
    worker = WebhookWorker(env.gw)
    try:
        assert await worker.run_once() == 1
        env.clock.advance(3600)
        assert await worker.run_once() == 0  # not retried
    finally:
        await worker.aclose()
    log = await delivery_log(env.gw, task_id)
    assert len(log) == 1
    entry = log[0]
    assert entry.delivery.status == "failed" and entry.delivery.attempts == 1
    assert entry.delivery.next_attempt_at is None
    assert len(entry.attempts) == 1 and entry.attempts[0].status_code is None
    assert "10.0.0.7" in (entry.attempts[0].error or "")
