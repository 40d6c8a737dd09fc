"""The console's defences without a browser, on the in-process app: nothing without a session, the
operator token on the admin API, throttled sign-ins, CSRF and Origin checks, headers, escaping,
expiry."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kling_gateway.console.auth import SESSION_SECONDS, issue_token
from kling_gateway.services import admin, channel_admin
from tests.conftest import Env
from tests.console.conftest import ORIGIN, client_of


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/console/"),
        ("GET", "/console/overview/figures"),
        ("GET", "/console/tasks"),
        ("GET", "/console/tasks/123"),
        ("GET", "/console/users"),
        ("GET", "/console/money?user=alice"),
        ("GET", "/console/channels"),
        ("GET", "/console/prices"),
        ("POST", "/console/users"),
        ("POST", "/console/money"),
        ("POST", "/console/channels/simulator/edit"),
        ("POST", "/console/user"),
        ("GET", "/console/money/statement.csv?user=alice"),
    ],
)
async def test_nothing_without_a_session(env: Env, method: str, path: str) -> None:
    async with await client_of(env) as client:
        res = await client.request(method, path, headers={"Origin": ORIGIN}, data={"name": "x"})
    assert res.status_code == 303 and res.headers["location"] == "/console/login"
    assert "alice" not in res.text and "simulator" not in res.text


async def test_a_polling_page_without_a_session_is_sent_to_sign_in(env: Env) -> None:
    async with await client_of(env) as client:
        res = await client.get("/console/overview/figures", headers={"HX-Request": "true"})
    assert (
        res.status_code == 401 and res.headers["HX-Redirect"] == "/console/login" and res.text == ""
    )


async def test_admin_api_takes_the_stored_operator_token(env: Env) -> None:
    async with await client_of(env) as client:
        off = await client.get("/admin/v1/channels", headers={"Authorization": "Bearer anything"})
        assert off.status_code == 404  # no token anywhere: no admin API
        token = await issue_token(env.gw)
        ok = await client.get("/admin/v1/channels", headers={"Authorization": f"Bearer {token}"})
        bad = await client.get(
            "/admin/v1/channels", headers={"Authorization": "Bearer kgw-op-nope"}
        )
        odd = await client.get(
            "/admin/v1/channels", headers={b"Authorization": "Bearer é".encode()}
        )
        newer = await issue_token(env.gw)
        old = await client.get("/admin/v1/channels", headers={"Authorization": f"Bearer {token}"})
        new = await client.get("/admin/v1/channels", headers={"Authorization": f"Bearer {newer}"})
    assert ok.status_code == 200 and ok.json()["data"][0]["name"] == "simulator"
    assert bad.status_code == 401 and bad.json()["code"] == 1002
    assert odd.status_code == 401
    assert old.status_code == 401 and new.status_code == 200


@pytest.mark.parametrize("settings_overrides", [{"admin_token": "env-admin-token"}])
async def test_env_token_overrides_the_stored_one(
    env: Env, settings_overrides: dict[str, Any]
) -> None:
    stored = await issue_token(env.gw)
    async with await client_of(env) as client:
        api = await client.get("/admin/v1/channels", headers={"Authorization": f"Bearer {stored}"})
        login = await client.post(
            "/console/login", data={"token": stored}, headers={"Origin": ORIGIN}
        )
        env_login = await client.post(
            "/console/login", data={"token": "env-admin-token"}, headers={"Origin": ORIGIN}
        )
    assert api.status_code == 401 and login.status_code == 401
    assert env_login.status_code == 303


async def test_failed_sign_ins_are_throttled_per_address(env: Env, token: str) -> None:
    async with await client_of(env, "10.0.0.7") as client:
        for _ in range(5):
            res = await client.post(
                "/console/login", data={"token": "wrong"}, headers={"Origin": ORIGIN}
            )
            assert res.status_code == 401
        res = await client.post("/console/login", data={"token": token}, headers={"Origin": ORIGIN})
        assert res.status_code == 429 and int(res.headers["Retry-After"]) >= 1
        assert "too many failed sign-ins" in res.text
    async with await client_of(env, "10.0.0.8") as other:
        res = await other.post("/console/login", data={"token": token}, headers={"Origin": ORIGIN})
        assert res.status_code == 303


async def test_sign_in_from_another_origin_is_refused(env: Env, token: str) -> None:
    async with await client_of(env) as client:
        res = await client.post(
            "/console/login", data={"token": token}, headers={"Origin": "http://evil.example"}
        )
    assert res.status_code == 403 and "set-cookie" not in res.headers


@pytest.mark.parametrize(
    "headers,with_token,created",
    [
        ({"Origin": ORIGIN}, True, True),
        ({"Referer": f"{ORIGIN}/console/users"}, True, True),  # no Origin: the Referer's origin
        ({"Origin": ORIGIN}, False, False),  # no CSRF token
        ({"Origin": "http://evil.example"}, True, False),  # cross-origin, even with the token
        ({"Origin": "null"}, True, False),
        ({}, True, False),  # neither header: not a browser form of ours
    ],
)
async def test_writes_need_the_csrf_token_and_our_origin(
    env: Env,
    signed_in: tuple[httpx.AsyncClient, str],
    headers: dict[str, str],
    with_token: bool,
    created: bool,
) -> None:
    client, csrf = signed_in
    form = {"name": "mallory", **({"csrf": csrf} if with_token else {})}
    res = await client.post("/console/users", data=form, headers=headers)
    assert res.status_code == (303 if created else 403)
    assert (await env.gw.accounts.get_user("mallory") is not None) is created


async def test_a_wrong_csrf_token_is_refused(
    env: Env, signed_in: tuple[httpx.AsyncClient, str]
) -> None:
    client, csrf = signed_in
    res = await client.post(
        "/console/money",
        data={"user": "alice", "direction": "credit", "amount": "5", "csrf": csrf[:-1] + "x"},
        headers={"Origin": ORIGIN},
    )
    assert res.status_code == 403 and "CSRF" in res.text


async def test_every_page_sends_the_security_headers(
    signed_in: tuple[httpx.AsyncClient, str],
) -> None:
    client, _ = signed_in
    for path in (
        "/console/login",
        "/console/",
        "/console/tasks",
        "/console/users",
        "/console/channels",
    ):
        res = await client.get(path)
        csp = res.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp, path
        assert "frame-ancestors 'none'" in csp and res.headers["X-Frame-Options"] == "DENY", path
        assert "unsafe-inline" not in csp and "<script>" not in res.text, path
        assert res.headers["Cache-Control"] == "no-store"


async def test_user_strings_are_escaped(env: Env, signed_in: tuple[httpx.AsyncClient, str]) -> None:
    client, _ = signed_in
    await admin.create_user(env.gw, "<script>alert(1)</script>")
    res = await client.post(
        "/kling/v1/videos/text2video",
        json={"model_name": "kling-v2-6", "prompt": '<img src=x onerror="alert(2)">'},
        headers=env.auth(),
    )
    task_id = res.json()["data"]["task_id"]
    users = (await client.get("/console/users")).text
    tasks = (await client.get("/console/tasks")).text
    task = (await client.get(f"/console/tasks/{task_id}")).text
    assert "<script>alert(1)" not in users and "&lt;script&gt;alert(1)&lt;/script&gt;" in users
    for page in (tasks, task):
        assert "<img src=x" not in page and "&lt;img src=x onerror=" in page


async def test_channel_secrets_are_never_rendered(
    env: Env, signed_in: tuple[httpx.AsyncClient, str]
) -> None:
    client, csrf = signed_in
    await channel_admin.add(
        env.gw,
        "sg",
        "http://127.0.0.1:9",
        access_key="ak-visible-1234",
        secret_key="very-secret-sk",
    )
    page = (await client.get("/console/channels")).text
    assert "very-secret-sk" not in page and "ak-visible-1234" not in page and "sg" in page
    res = await client.post(
        "/console/channels",
        data={
            "name": "sg",
            "base_url": "http://127.0.0.1:9",
            "access_key": "a",
            "secret_key": "echo-me",
            "csrf": csrf,
        },
        headers={"Origin": ORIGIN},
    )
    assert res.status_code == 400 and 'id="error-name"' in res.text and "echo-me" not in res.text


async def test_sessions_expire_and_sign_out_ends_them(
    env: Env, signed_in: tuple[httpx.AsyncClient, str]
) -> None:
    client, _ = signed_in
    assert (await client.get("/console/")).status_code == 200
    env.clock.advance(SESSION_SECONDS + 1)
    res = await client.get("/console/")
    assert res.status_code == 303 and res.headers["location"] == "/console/login"


async def test_sign_out_ends_the_session_on_the_server(
    env: Env, signed_in: tuple[httpx.AsyncClient, str]
) -> None:
    client, csrf = signed_in
    cookie = client.cookies.get("kgw_console")
    res = await client.post("/console/logout", data={"csrf": csrf}, headers={"Origin": ORIGIN})
    assert res.status_code == 303
    client.cookies.set("kgw_console", cookie or "", domain="gw", path="/console")  # replaying it
    assert (await client.get("/console/")).status_code == 303


async def test_forms_show_the_services_errors_next_to_their_fields(
    signed_in: tuple[httpx.AsyncClient, str],
) -> None:
    client, csrf = signed_in
    origin = {"Origin": ORIGIN}
    money = await client.post(
        "/console/money",
        data={"user": "alice", "direction": "debit", "amount": "-3", "csrf": csrf},
        headers=origin,
    )
    key = await client.post(
        "/console/keys",
        data={"user": "alice", "models": "no-such-model", "expires_days": "", "csrf": csrf},
        headers=origin,
    )
    tasks = await client.get("/console/tasks?status=bogus&since=yesterday")
    nobody = await client.get("/console/tasks?user=nobody")
    assert money.status_code == 400 and 'id="error-amount"' in money.text
    assert (
        key.status_code == 400 and 'id="error-models"' in key.text and "no-such-model" in key.text
    )
    assert tasks.status_code == 400
    for field in ("status", "since"):
        assert f'id="error-{field}"' in tasks.text
    assert nobody.status_code == 400 and 'id="error-user"' in nobody.text
