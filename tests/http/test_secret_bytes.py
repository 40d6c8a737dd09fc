"""Secrets compared as bytes: a header or path of any bytes is a plain refusal, never a 500."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from kling_gateway.crypto import same_secret
from kling_gateway.mirror.signing import UrlSigner
from kling_gateway.services import inbound
from tests.conftest import Env

ADMIN_TOKEN = "admin-secret"
# Raw header values: UTF-8 non-ASCII, latin-1 bytes, the right token with a stray byte after it.
RAW_VALUES = [
    "Bearer é".encode(),
    b"Bearer \xff\xfe\x80",
    "Bearer admin-secrét".encode(),
    b"Bearer admin-secret\xe9",
    b"\xe9 admin-secret",
    "Bearer 令牌".encode(),
]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"admin_token": ADMIN_TOKEN, "public_base_url": "http://gw.example"}


async def _raw_get(app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    """One request straight through ASGI, so header bytes reach the app exactly as sent."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"gw"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("gw", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body


@pytest.mark.parametrize("value", RAW_VALUES)
async def test_admin_token_of_any_bytes_is_401(env: Env, value: bytes) -> None:
    status, body = await _raw_get(env.app, "/admin/v1/channels", [(b"authorization", value)])
    assert status == 401, body
    assert orjson.loads(body)["code"] == 1002
    good = [(b"authorization", f"Bearer {ADMIN_TOKEN}".encode())]
    assert (await _raw_get(env.app, "/admin/v1/channels", good))[0] == 200


@pytest.mark.parametrize("value", RAW_VALUES)
async def test_user_routes_refuse_any_bytes_alike(env: Env, value: bytes) -> None:
    headers = [(b"authorization", value)]
    status, body = await _raw_get(env.app, "/kling/v1/videos/text2video", headers)
    assert status == 401, body


@pytest.mark.parametrize("token", ["é" * 64, "tökén", "%00", "%FF%FE"])
async def test_inbound_callback_token_of_any_characters_is_not_found(env: Env, token: str) -> None:
    created = await env.create({"model_name": "kling-v1", "prompt": "p"})
    task_id = created.json()["data"]["task_id"]
    path = f"{inbound.CALLBACK_PATH}/{task_id}/{token}"
    resp = await env.client.post(path, content=b"{}")
    assert resp.status_code == 404, resp.text
    assert resp.json()["code"] == 1203


def test_result_link_signature_of_any_characters_is_invalid() -> None:
    signer = UrlSigner(b"k" * 32)
    good = signer.sign("123456789012345678", 0, 99)
    assert signer.verify("123456789012345678", 0, 99, good.upper())
    for sig in ("é" * 64, good[:-1] + "é", "\x00" * 64):
        assert not signer.verify("123456789012345678", 0, 99, sig)


@pytest.mark.parametrize(
    ("given", "expected", "same"),
    [
        ("abc", "abc", True),
        ("abc", "abd", False),
        ("é", "é", True),
        ("é", "e", False),
        ("\udcff", "x", False),  # a lone surrogate: no header decodes to one, but any str works
        ("", "", True),
        ("令牌", "令牌", True),
    ],
)
def test_same_secret(given: str, expected: str, same: bool) -> None:
    assert same_secret(given, expected) is same
