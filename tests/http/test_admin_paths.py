"""Names with '/', '%' and other URL-reserved characters work in ``/admin/v1`` paths when encoded,
and never reach another route ('a%2Fkeys' is the user "a/keys", not the keys of "a")."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from kling_gateway.http.paths import keep_separators
from tests.conftest import Env

ADMIN = "admin-token-123"
NAME = "ops/eu 100% & co?#"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"admin_token": ADMIN}


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN}"}


@pytest.mark.parametrize(
    "raw,path",
    [
        ("/admin/v1/users/a%2Fb", "/admin/v1/users/a%2Fb"),
        ("/admin/v1/users/a%2fb/keys", "/admin/v1/users/a%2Fb/keys"),
        ("/admin/v1/users/100%25%20off", "/admin/v1/users/100%25 off"),
        ("/admin/v1/users/%C3%A9t%C3%A9", "/admin/v1/users/été"),
    ],
)
def test_the_path_is_decoded_except_separators(raw: str, path: str) -> None:
    assert keep_separators(raw) == path


async def test_a_user_named_with_reserved_characters(env: Env) -> None:
    res = await env.client.post("/admin/v1/users", json={"name": NAME}, headers=_auth())
    assert res.status_code == 200, res.text
    base = f"/admin/v1/users/{quote(NAME, safe='')}"
    shown = await env.client.get(base, headers=_auth())
    assert shown.status_code == 200 and shown.json()["data"]["name"] == NAME
    patched = await env.client.patch(base, json={"max_in_flight": 2}, headers=_auth())
    assert patched.json()["data"]["limits"]["max_in_flight"] == 2
    credit = await env.client.post(f"{base}/credit", json={"amount": "3"}, headers=_auth())
    assert credit.status_code == 200 and credit.json()["data"]["user"] == NAME
    key = await env.client.post(f"{base}/keys", json={}, headers=_auth())
    assert key.status_code == 200 and key.json()["data"]["user"] == NAME
    csv = await env.client.get(f"{base}/statement.csv", headers=_auth())
    assert csv.status_code == 200 and "3" in csv.text


async def test_an_encoded_slash_never_reaches_another_route(env: Env) -> None:
    for name in ("a", "a/keys"):
        res = await env.client.post("/admin/v1/users", json={"name": name}, headers=_auth())
        assert res.status_code == 200, res.text
    one = await env.client.get("/admin/v1/users/a%2Fkeys", headers=_auth())
    assert one.status_code == 200 and one.json()["data"]["name"] == "a/keys"
    keys = await env.client.get("/admin/v1/users/a/keys", headers=_auth())
    assert keys.status_code == 200 and keys.json()["data"] == []
    missing = await env.client.get("/admin/v1/users/b%2Fc", headers=_auth())
    assert missing.status_code == 404 and "'b/c'" in missing.json()["message"]
