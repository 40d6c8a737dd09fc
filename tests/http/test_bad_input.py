"""Bad input from fuzzing and hand probes: a Kling client error, never a 5xx, on both backends."""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import orjson
import pytest

from kling_gateway.domain.shape import MAX_DEPTH
from tests.conftest import TEXT2VIDEO, Env, both_databases

database_url = both_databases

ADMIN_TOKEN = "admin-secret"
BODY: dict[str, Any] = {"model_name": "kling-v1", "prompt": "a lighthouse"}
V3: dict[str, Any] = {"model_name": "kling-v3", "prompt": "a lighthouse", "sound": "on"}
SHOT = {"index": 1, "prompt": "a shot", "duration": "5"}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"admin_token": ADMIN_TOKEN}


def _error(resp: httpx.Response, status: int, code: int) -> str:
    assert resp.status_code == status, resp.text
    assert resp.json()["code"] == code
    message: str = resp.json()["message"]
    return message


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


V3_RAW = b'{"model_name":"kling-v3","prompt":"p","sound":"on",'
# JSON text with a value of ``depth`` levels in each place a body can hold one (raw, past json=).
DEEP_PLACES = {
    "unknown field": lambda v: b'{"model_name":"kling-v1","prompt":"p","extra":' + v + b"}",
    "multi_prompt shot": lambda v: (
        b'{"model_name":"kling-v3","prompt":"p","multi_shot":true,"shot_type":"customize",'
        b'"duration":"5","multi_prompt":[{"index":1,"prompt":"s","duration":"5","x":' + v + b"}]}"
    ),
    "voice_list item": lambda v: V3_RAW + b'"voice_list":[{"voice_id":"a","x":' + v + b"}]}",
    "top level array": lambda v: v,
}


@pytest.mark.parametrize("place", sorted(DEEP_PLACES))
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 260, 1_000])
async def test_deep_bodies_refused_on_create_and_quote(env: Env, place: str, depth: int) -> None:
    raw = DEEP_PLACES[place](_deep(depth))
    headers = {**env.auth(), "Content-Type": "application/json"}
    for path in (TEXT2VIDEO, f"{TEXT2VIDEO}/quote"):
        resp = await env.client.post(path, content=raw, headers=headers)
        if place == "top level array":  # an array is not an object, whatever its depth
            _error(resp, 400, 1200)
        else:
            assert "nests deeper than" in _error(resp, 400, 1200)
    assert env.sent_bodies() == []


NUL_FIELDS: dict[str, tuple[dict[str, Any], str]] = {
    "external_task_id": ({**BODY, "external_task_id": "mine\x00"}, "external_task_id"),
    "prompt": ({**BODY, "prompt": "a\x00b"}, "prompt"),
    "negative_prompt": ({**BODY, "negative_prompt": "\x00"}, "negative_prompt"),
    "callback_url": ({**BODY, "callback_url": "http://127.0.0.1:9/\x00"}, "callback_url"),
    "model_name": ({**BODY, "model_name": "kling-v1\x00"}, "model_name"),
    "shot prompt": (
        {
            **V3,
            "multi_shot": True,
            "shot_type": "customize",
            "multi_prompt": [{**SHOT, "prompt": "\x00"}],
        },
        "multi_prompt[0].prompt",
    ),
    "voice id": ({**V3, "voice_list": [{"voice_id": "v\x00"}]}, "voice_list[0].voice_id"),
    "unknown field": ({**BODY, "extra": {"k": "\x00"}}, "extra.k"),
}


@pytest.mark.parametrize("case", sorted(NUL_FIELDS))
async def test_nul_in_a_create_is_refused_naming_the_field(env: Env, case: str) -> None:
    data, field = NUL_FIELDS[case]
    for path in (TEXT2VIDEO, f"{TEXT2VIDEO}/quote"):
        resp = await env.client.post(path, json=data, headers=env.auth())
        assert _error(resp, 400, 1201).startswith(f"{field}: ")
    assert env.sent_bodies() == []


LOOKUPS = [
    f"{TEXT2VIDEO}/{{}}",
    "/v1/videos/text2video/{}",
    f"{TEXT2VIDEO}/{{}}/deliveries",
]
ADMIN_LOOKUPS = ["/admin/v1/tasks/{}", "/admin/v1/tasks/{}/deliveries"]


@pytest.mark.parametrize("ident", ["%00", "mine%00", "123456789012345678%00", "%00mine"])
async def test_nul_in_a_looked_up_id_is_not_found(env: Env, ident: str) -> None:
    created = await env.create({**BODY, "external_task_id": "mine"})
    assert created.status_code == 200, created.text
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for template in LOOKUPS:
        _error(await env.client.get(template.format(ident), headers=env.auth()), 404, 1203)
    for template in ADMIN_LOOKUPS:
        _error(await env.client.get(template.format(ident), headers=admin), 404, 1203)
    resp = await env.client.post(f"/admin/v1/deliveries/{ident}/redeliver", headers=admin)
    _error(resp, 404, 1203)


async def test_nul_in_admin_channel_fields(env: Env) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for path in ("/admin/v1/channels/a%00", "/admin/v1/channels/a%00/probe"):
        method = "PATCH" if path.endswith("%00") else "POST"
        body = orjson.dumps({"priority": 1}) if method == "PATCH" else b""
        resp = await env.client.request(method, path, content=body, headers=admin)
        _error(resp, 404, 1203)
    _error(await env.client.delete("/admin/v1/channels/a%00/keys/1", headers=admin), 404, 1203)
    _error(await env.client.post("/admin/v1/channels/a%00/keys", json={}, headers=admin), 404, 1203)
    for field in ("name", "base_url", "access_key", "secret_key", "api_key"):
        creds = {"api_key": "k"} if field == "api_key" else {"access_key": "a", "secret_key": "s"}
        data = {"name": "two", "base_url": "http://127.0.0.1:9", **creds, field: "x\x00"}
        resp = await env.client.post("/admin/v1/channels", json=data, headers=admin)
        assert _error(resp, 400, 1201).startswith(f"{field}: "), field
    nested = {"models": ["kling-v1\x00"], "model_map": {"kling-v1": "x\x00"}, "caps": {"\x00": 1}}
    for field, value in nested.items():
        path = "/admin/v1/channels/default"
        resp = await env.client.patch(path, json={field: value}, headers=admin)
        assert _error(resp, 400, 1201).startswith(f"{field}"), field


async def test_nul_in_a_jwt_issuer_is_unknown(env: Env) -> None:
    claims = {"iss": "ak-\x00", "exp": int(env.clock()) + 60}
    token = jwt.encode(claims, "s" * 32, algorithm="HS256")
    resp = await env.client.get(TEXT2VIDEO, headers={"Authorization": f"Bearer {token}"})
    assert "unknown access key" in _error(resp, 401, 1002)


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "127.1", "017700000001"])
async def test_numeric_callback_host_is_refused_at_submit(env: Env, host: str) -> None:
    data = {**BODY, "callback_url": f"http://{host}:9/hook"}  # 127.0.0.1 is allowed in tests
    for path in (TEXT2VIDEO, f"{TEXT2VIDEO}/quote"):
        message = _error(await env.client.post(path, json=data, headers=env.auth()), 400, 1201)
        assert message.startswith("callback_url: host ") and "not a canonical IPv4" in message
    ok = {**BODY, "callback_url": "http://127.0.0.1:9/hook"}
    assert (await env.create(ok)).status_code == 200
