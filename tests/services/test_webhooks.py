"""Per-user signing secrets, the signed headers, and the delivery-log / redeliver use cases."""

from __future__ import annotations

import asyncio
import base64
import time

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook, WebhookVerificationError

from kling_gateway.services import webhooks
from kling_gateway.services.admin import AdminError
from kling_gateway.storage.tables import users
from tests.conftest import Env

# kling-examples.json → signature_test_vector_official (Kling's own test vector; copied, not read)
VECTOR_SECRET = "whsec_dGVzdHNlY3JldHRlc3RzZWNyZXR0ZXN0c2VjcmV0MTI="
VECTOR_ID = "9876543210"
VECTOR_TS = 1781080794
VECTOR_BODY = (
    '{"id":"1234567890","status":"succeeded","message":"","create_time":1781080778802,'
    '"update_time":1781080794151}'
)
VECTOR_SIGNATURE = "v1,UsKlJP00XoQyOn410NM9xv34sP+Gl0jnOO9Lcpr7NJ4="


async def uid(env: Env, name: str = "alice") -> int:
    user = await env.gw.accounts.get_user(name)
    assert user is not None
    return user.id


async def stored_secret(env: Env, user_id: int) -> str | None:
    async with env.gw.engine.connect() as conn:
        value = (
            await conn.execute(select(users.c.webhook_secret_enc).where(users.c.id == user_id))
        ).scalar()
    return None if value is None else str(value)


def test_signature_matches_klings_official_vector() -> None:
    headers = webhooks.signed_headers(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY)
    assert headers["webhook-signature"] == VECTOR_SIGNATURE
    assert headers["webhook-id"] == VECTOR_ID and headers["webhook-timestamp"] == str(VECTOR_TS)
    assert headers["Content-Type"] == "application/json; charset=utf-8"


def test_signed_headers_verify_with_standardwebhooks() -> None:
    secret = webhooks.new_secret()
    now = int(time.time())
    body = '{"task_id":"1","task_status":"succeed"}'
    headers = webhooks.signed_headers(secret, "msg_1", now, body)
    assert Webhook(secret).verify(body, headers) == {"task_id": "1", "task_status": "succeed"}
    with pytest.raises(WebhookVerificationError):
        Webhook(webhooks.new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace("succeed", "failed"), headers)


def test_new_secret_shape() -> None:
    secret = webhooks.new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
    assert webhooks.new_secret() != secret


async def test_user_secret_is_created_once_and_stored_encrypted(env: Env) -> None:
    alice = await uid(env)
    assert await stored_secret(env, alice) is None
    secret = await webhooks.user_secret(env.gw, alice)
    assert secret.startswith("whsec_")
    assert await webhooks.user_secret(env.gw, alice) == secret
    raw = await stored_secret(env, alice)
    assert raw is not None and secret not in raw and secret.removeprefix("whsec_") not in raw
    assert env.gw.box.decrypt(raw) == secret
    assert await webhooks.user_secret(env.gw, await uid(env, "bob")) != secret


async def test_concurrent_first_uses_agree_on_one_secret(env: Env) -> None:
    alice = await uid(env)
    got = await asyncio.gather(*(webhooks.user_secret(env.gw, alice) for _ in range(8)))
    assert len(set(got)) == 1


async def test_rotate_replaces_the_secret(env: Env) -> None:
    alice = await uid(env)
    old = await webhooks.user_secret(env.gw, alice)
    new = await webhooks.rotate_secret(env.gw, alice)
    assert new != old and new.startswith("whsec_")
    assert await webhooks.user_secret(env.gw, alice) == new


async def test_unknown_users(env: Env) -> None:
    with pytest.raises(AdminError):
        await webhooks.user_secret(env.gw, 9999)
    with pytest.raises(AdminError):
        await webhooks.rotate_secret(env.gw, 9999)
    with pytest.raises(AdminError, match="no user 'carol'"):
        await webhooks.secret_for_user_name(env.gw, "carol")


async def test_secret_by_user_name(env: Env) -> None:
    first = await webhooks.secret_for_user_name(env.gw, "alice")
    assert await webhooks.secret_for_user_name(env.gw, "alice") == first
    rotated = await webhooks.secret_for_user_name(env.gw, "alice", rotate=True)
    assert rotated != first
    assert await webhooks.user_secret(env.gw, await uid(env)) == rotated


async def test_delivery_log_and_redeliver(env: Env) -> None:
    resp = await env.create(
        {"model_name": "kling-v1", "prompt": "x", "callback_url": "https://hooks.example.com/k"}
    )
    task_id = resp.json()["data"]["task_id"]
    await env.run_until_idle(8)
    log = await webhooks.admin_delivery_log(env.gw, task_id)
    assert [e.delivery.task_status for e in log] == ["submitted", "processing", "succeed"]
    assert all(e.attempts == [] for e in log)
    view = webhooks.entry_json(log[0])
    assert view["delivery_id"] == log[0].delivery.id and view["attempt_log"] == []
    assert "payload" not in view and "user_id" not in view
    assert "payload" in webhooks.entry_json(log[0], operator=True)

    env.clock.advance(3)
    queued = await webhooks.redeliver(env.gw, log[0].delivery.id)
    assert queued.status == "pending" and queued.next_attempt_at == env.gw.now_ms()
    with pytest.raises(AdminError):
        await webhooks.redeliver(env.gw, "msg_unknown")
    with pytest.raises(AdminError):
        await webhooks.admin_delivery_log(env.gw, "999")
