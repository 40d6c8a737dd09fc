"""Auth failures and bad input as a client sees them: Kling envelope and codes, never a 5xx."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from kling_gateway.services import admin
from tests.conftest import TEXT2VIDEO, Env

BODY = {"model_name": "kling-v1", "prompt": "a lighthouse"}


def _token(ak: str, sk: str, **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": ak, "exp": now + 1800, "nbf": now - 5, **claims}
    return jwt.encode(payload, sk, algorithm="HS256")


async def _aksk(env: Env, user: str = "alice", **kw: Any) -> tuple[str, str]:
    issued = await admin.create_key(env.gw, user, aksk=True, **kw)
    assert issued.access_key and issued.secret_key
    return issued.access_key, issued.secret_key


def _assert_kling_error(resp: Any, status: int, code: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    assert body["code"] == code
    assert body["request_id"] == resp.headers["x-request-id"]
    assert body["message"]
    return body


async def test_jwt_like_kling_clients_is_accepted(env: Env) -> None:
    ak, sk = await _aksk(env)
    # iat and other claims are fine; a header without typ too (Kling's Java sample sets only alg).
    token = jwt.encode(
        {
            "iss": ak,
            "exp": int(time.time()) + 1800,
            "nbf": int(time.time()) - 5,
            "iat": int(time.time()),
        },
        sk,
        algorithm="HS256",
        headers={"alg": "HS256"},
    )
    resp = await env.client.post(
        TEXT2VIDEO, json=BODY, headers={"Authorization": f"Bearer {token}"}
    )
    assert resp.status_code == 200, resp.text
    task_id = resp.json()["data"]["task_id"]
    # the same user sees it with their sk- key too
    assert (await env.get(task_id)).status_code == 200


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, 1001),
        ("", 1001),
        ("Bearer", 1002),
        ("Basic abc", 1002),
        ("Bearer sk-unknown", 1002),
        ("Bearer not-a-token", 1002),
        ("Bearer a.b.c", 1002),
    ],
)
async def test_bad_authorization(env: Env, header: str | None, code: int) -> None:
    headers = {} if header is None else {"Authorization": header}
    for resp in (
        await env.client.post(TEXT2VIDEO, json=BODY, headers=headers),
        await env.client.get(TEXT2VIDEO, headers=headers),
        await env.client.get(f"{TEXT2VIDEO}/123", headers=headers),
    ):
        _assert_kling_error(resp, 401, code)


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"nbf": int(time.time()) + 600}, 1003),
        ({"exp": int(time.time()) - 600}, 1004),
        ({"iss": "ak-nobody"}, 1002),
    ],
)
async def test_jwt_failures(env: Env, claims: dict[str, Any], code: int) -> None:
    ak, sk = await _aksk(env)
    token = _token(ak, sk, **claims)
    resp = await env.client.post(
        TEXT2VIDEO, json=BODY, headers={"Authorization": f"Bearer {token}"}
    )
    _assert_kling_error(resp, 401, code)


async def test_jwt_signed_with_another_secret(env: Env) -> None:
    ak, _ = await _aksk(env)
    token = _token(ak, "x" * 40)
    resp = await env.client.post(
        TEXT2VIDEO, json=BODY, headers={"Authorization": f"Bearer {token}"}
    )
    _assert_kling_error(resp, 401, 1002)


async def test_model_allow_list(env: Env) -> None:
    issued = await admin.create_key(env.gw, "alice", models=["kling-v1"])
    headers = {"Authorization": f"Bearer {issued.api_key}"}
    assert (await env.client.post(TEXT2VIDEO, json=BODY, headers=headers)).status_code == 200
    resp = await env.client.post(
        TEXT2VIDEO, json={**BODY, "model_name": "kling-v3"}, headers=headers
    )
    _assert_kling_error(resp, 403, 1103)


async def test_revoked_and_expired_keys(env: Env) -> None:
    revoked = await admin.create_key(env.gw, "alice")
    await admin.revoke_key(env.gw, revoked.id)
    resp = await env.client.post(
        TEXT2VIDEO, json=BODY, headers={"Authorization": f"Bearer {revoked.api_key}"}
    )
    _assert_kling_error(resp, 401, 1002)
    expiring = await admin.create_key(env.gw, "alice", expires_days=1)
    env.clock.advance(2 * 86400)
    resp = await env.client.post(
        TEXT2VIDEO, json=BODY, headers={"Authorization": f"Bearer {expiring.api_key}"}
    )
    _assert_kling_error(resp, 401, 1004)


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b"", 400, 1200),
        (b"{not json", 400, 1200),
        (b"[1, 2]", 400, 1200),
        (b'"text"', 400, 1200),
        (b"\xff\xfe", 400, 1200),
        (b'{"model_name": 5, "prompt": "x"}', 400, 1201),
        (b'{"model_name": "kling-v9", "prompt": "x"}', 400, 1201),
        (b'{"model_name": "kling-v2-6", "prompt": "x", "duration": "12"}', 400, 1201),
        (b'{"model_name": "kling-v1", "prompt": ""}', 400, 1201),
        (b'{"model_name": "kling-v1", "prompt": "x", "callback_url": "ftp://x"}', 400, 1201),
    ],
)
async def test_bad_bodies_get_kling_errors(
    env: Env, content: bytes, status: int, code: int
) -> None:
    headers = {**env.auth(), "Content-Type": "application/json"}
    resp = await env.client.post(TEXT2VIDEO, content=content, headers=headers)
    _assert_kling_error(resp, status, code)
    assert env.sim.tasks_created() == 0


async def test_validation_message_names_field_and_rule(env: Env) -> None:
    resp = await env.create({"model_name": "kling-v2-6", "prompt": "x", "duration": "12"})
    message = _assert_kling_error(resp, 400, 1201)["message"]
    assert "duration" in message and "kling-v2-6" in message


async def test_body_over_the_limit(env: Env) -> None:
    big = {"model_name": "kling-v1", "prompt": "x", "padding": "y" * (1024 * 1024)}
    _assert_kling_error(await env.create(big), 413, 1200)


async def test_unknown_fields_are_forwarded(env: Env) -> None:
    resp = await env.create({**BODY, "future_feature": {"level": 3}})
    assert resp.status_code == 200
    assert env.sent_bodies()[0]["future_feature"] == {"level": 3}


@pytest.mark.parametrize("settings_overrides", [{"strict_fields": True}])
async def test_strict_mode_refuses_unknown_fields(env: Env) -> None:
    resp = await env.create({**BODY, "future_feature": 1})
    assert "future_feature" in _assert_kling_error(resp, 400, 1201)["message"]


async def test_unknown_route_and_method(env: Env) -> None:
    _assert_kling_error(await env.client.get("/kling/v1/nothing", headers=env.auth()), 404, 1203)
    wrong = await env.client.delete(TEXT2VIDEO, headers=env.auth())
    _assert_kling_error(wrong, 405, 1202)
    assert wrong.headers["allow"] == "GET, POST"


async def test_health_and_docs(env: Env) -> None:
    health = await env.client.get("/healthz")
    assert (
        health.status_code == 200 and health.json()["request_id"] == health.headers["x-request-id"]
    )
    ready = await env.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    spec = (await env.client.get("/openapi.json")).json()
    create = spec["paths"]["/kling/v1/videos/text2video"]["post"]
    assert create["requestBody"]["content"]["application/json"]["examples"]
    assert "/kling/v1/videos/text2video/{task_id}" in spec["paths"]
    assert (await env.client.get("/docs")).status_code == 200
