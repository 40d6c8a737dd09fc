"""``/admin/v1`` users, keys, money, limits, prices, models, tasks and overview, on SQLite and
PostgreSQL: what the operator console and scripts use. Every route needs the admin token."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import Env, both_databases

database_url = both_databases
ADMIN = "admin-token-123"
BODY = {"model_name": "kling-v1", "prompt": "a fox"}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"admin_token": ADMIN, "channel_probe_seconds": 0}


def H() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN}"}


async def call(env: Env, method: str, path: str, **kw: Any) -> Any:
    res = await env.client.request(method, f"/admin/v1{path}", headers=H(), **kw)
    return res


def field_error(res: Any, field: str) -> None:
    assert res.status_code == 400, res.text
    body = res.json()
    assert body["code"] == 1201 and body["message"].startswith(f"{field}:"), body


async def test_every_admin_route_needs_the_token(env: Env) -> None:
    spec = (await env.client.get("/openapi.json")).json()
    seen = 0
    for path, ops in spec["paths"].items():
        if not path.startswith("/admin/"):
            continue
        url = re.sub(r"\{[^}]+\}", "1", path)
        for method, op in ops.items():
            assert op["security"] == [{"adminToken": []}], (method, path)
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                res = await env.client.request(method.upper(), url, headers=headers, json={})
                assert res.status_code == 401, (method, path, res.text)
                assert res.json()["code"] in (1001, 1002)
            seen += 1
    assert seen >= 30


async def test_users_create_list_show_rename_disable(env: Env) -> None:
    res = await call(env, "POST", "/users", json={"name": "carol"})
    assert res.status_code == 200, res.text
    assert res.json()["data"]["keys"] == 0 and res.json()["data"]["balance"] == "0"
    field_error(await call(env, "POST", "/users", json={"name": "carol"}), "name")
    field_error(await call(env, "POST", "/users", json={"name": ""}), "name")
    field_error(await call(env, "POST", "/users", json={"name": "x", "age": 3}), "age")
    assert (await env.create(BODY)).status_code == 200
    users = (await call(env, "GET", "/users")).json()["data"]
    alice = next(u for u in users if u["name"] == "alice")
    assert alice["keys"] == 1 and alice["in_flight"] == 1 and alice["balance"] != "0"
    assert [u["name"] for u in users] == ["alice", "bob", "carol"]
    res = await call(env, "PATCH", "/users/alice", json={"name": "alicia", "disabled": True})
    assert res.json()["data"]["name"] == "alicia" and res.json()["data"]["disabled"] is True
    refused = await env.create(BODY)
    assert refused.status_code == 401 and refused.json()["code"] == 1002
    await call(env, "PATCH", "/users/alicia", json={"disabled": False})
    assert (await env.create(BODY)).status_code == 200
    assert (await call(env, "GET", "/users/nobody")).status_code == 404
    field_error(await call(env, "PATCH", "/users/bob", json={"name": "alicia"}), "name")
    field_error(await call(env, "PATCH", "/users/bob", json={"disabled": "yes"}), "disabled")


async def test_keys_issue_list_masked_expire_and_revoke(env: Env) -> None:
    sk = (await call(env, "POST", "/users/bob/keys", json={"name": "ci"})).json()["data"]
    assert sk["api_key"].startswith("sk-") and sk["kind"] == "sk"
    pair = (await call(env, "POST", "/users/bob/keys", json={"kind": "aksk"})).json()["data"]
    assert pair["secret_key"] and pair["access_key"].startswith("ak-")
    listed = await call(env, "GET", "/users/bob/keys")
    assert len(listed.json()["data"]) == 3
    assert sk["api_key"] not in listed.text and pair["secret_key"] not in listed.text
    assert "api_key" not in listed.json()["data"][1]
    auth = {"Authorization": f"Bearer {sk['api_key']}"}
    assert (
        await env.client.post("/kling/v1/videos/text2video", json=BODY, headers=auth)
    ).status_code == 200
    past = env.gw.now_ms() - 1
    res = await call(env, "PATCH", f"/keys/{sk['id']}", json={"expires_at": past})
    assert res.json()["data"]["expires_at"] == past
    expired = await env.client.post("/kling/v1/videos/text2video", json=BODY, headers=auth)
    assert expired.status_code == 401 and expired.json()["code"] == 1004
    await call(env, "PATCH", f"/keys/{sk['id']}", json={"expires_at": None})
    res = await call(env, "DELETE", f"/keys/{sk['id']}")
    assert res.json()["data"]["disabled"] is True
    revoked = await env.client.post("/kling/v1/videos/text2video", json=BODY, headers=auth)
    assert revoked.status_code == 401
    assert (await call(env, "DELETE", "/keys/99999")).status_code == 404
    assert (await call(env, "POST", "/users/nobody/keys", json={})).status_code == 404
    field_error(await call(env, "POST", "/users/bob/keys", json={"kind": "jwt"}), "kind")
    field_error(
        await call(env, "PATCH", f"/keys/{sk['id']}", json={"expires_at": "soon"}), "expires_at"
    )


async def test_key_model_allow_list(env: Env) -> None:
    key = (await call(env, "POST", "/users/bob/keys", json={"models": ["kling-v2-6"]})).json()[
        "data"
    ]
    assert key["models"] == ["kling-v2-6"]
    auth = {"Authorization": f"Bearer {key['api_key']}"}
    res = await env.client.post("/kling/v1/videos/text2video", json=BODY, headers=auth)
    assert res.status_code == 403 and res.json()["code"] == 1103
    field_error(await call(env, "PATCH", f"/keys/{key['id']}", json={"models": ["nope"]}), "models")


async def test_key_ip_allow_list_is_enforced_for_both_key_kinds(env: Env) -> None:
    """The test client calls from 127.0.0.1: a list without it refuses with Kling's 429/1304."""
    keys = (await call(env, "GET", "/users/alice/keys")).json()["data"]
    res = await call(env, "PATCH", f"/keys/{keys[0]['id']}", json={"allowed_ips": ["10.0.0.0/8"]})
    assert res.json()["data"]["allowed_ips"] == ["10.0.0.0/8"]
    refused = await env.create(BODY)
    assert refused.status_code == 429 and refused.json()["code"] == 1304
    assert (
        await env.client.get("/kling/v1/videos/text2video", headers=env.auth())
    ).status_code == 429
    await call(
        env, "PATCH", f"/keys/{keys[0]['id']}", json={"allowed_ips": ["10.0.0.0/8", "127.0.0.1"]}
    )
    assert (await env.create(BODY)).status_code == 200
    pair = (
        await call(
            env, "POST", "/users/alice/keys", json={"kind": "aksk", "allowed_ips": ["::1/128"]}
        )
    ).json()["data"]
    token = _jwt(pair["access_key"], pair["secret_key"], env.gw.now_ms() // 1000)
    res = await env.client.post(
        "/kling/v1/videos/text2video", json=BODY, headers={"Authorization": f"Bearer {token}"}
    )
    assert res.status_code == 429 and res.json()["code"] == 1304
    field_error(
        await call(env, "PATCH", f"/keys/{keys[0]['id']}", json={"allowed_ips": ["10.0.0.300"]}),
        "allowed_ips",
    )
    field_error(
        await call(env, "PATCH", f"/keys/{keys[0]['id']}", json={"allowed_ips": []}), "allowed_ips"
    )


def _jwt(ak: str, sk: str, now: int) -> str:
    import jwt

    return jwt.encode({"iss": ak, "exp": now + 1800, "nbf": now - 5}, sk, algorithm="HS256")


async def test_money_credit_debit_balance_statement_and_multiplier(env: Env) -> None:
    await call(env, "POST", "/users", json={"name": "dan"})
    res = await call(env, "POST", "/users/dan/credit", json={"amount": "12.5", "note": "top-up"})
    assert res.json()["data"]["balance"] == "12.5"
    res = await call(env, "POST", "/users/dan/debit", json={"amount": 2})
    assert res.json()["data"]["balance"] == "10.5"
    res = await call(env, "POST", "/users/dan/debit", json={"amount": "100"})
    assert res.status_code == 429 and res.json()["code"] == 1102
    field_error(await call(env, "POST", "/users/dan/credit", json={"amount": "-1"}), "amount")
    field_error(await call(env, "POST", "/users/dan/credit", json={"amount": "0"}), "amount")
    field_error(await call(env, "POST", "/users/dan/credit", json={}), "amount")
    assert (await call(env, "GET", "/users/dan/balance")).json()["data"]["balance"] == "10.5"
    page = (await call(env, "GET", "/users/dan/statement?page_size=1")).json()["data"]
    assert page["total"] == 2 and page["items"][0]["amount"] == "-2" and len(page["items"]) == 1
    page2 = (await call(env, "GET", "/users/dan/statement?page=2&page_size=1")).json()["data"]
    assert page2["items"][0]["note"] == "top-up"
    field_error(await call(env, "GET", "/users/dan/statement?page=0"), "page")
    csv = await call(env, "GET", "/users/dan/statement.csv")
    assert csv.headers["content-type"].startswith("text/csv") and "top-up" in csv.text
    res = await call(env, "PUT", "/users/dan/multiplier", json={"multiplier": "0.8"})
    assert res.json()["data"]["price_multiplier"] == "0.8"
    assert (await call(env, "GET", "/users/dan")).json()["data"]["price_multiplier"] == "0.8"
    field_error(
        await call(env, "PUT", "/users/dan/multiplier", json={"multiplier": "x"}), "multiplier"
    )
    assert (await call(env, "GET", "/users/nobody/balance")).status_code == 404


async def test_per_user_in_flight_override(env: Env) -> None:
    res = await call(env, "PATCH", "/users/alice", json={"max_in_flight": 1})
    assert res.json()["data"]["limits"]["max_in_flight"] == 1
    assert (await env.create({**BODY, "external_task_id": "a"})).status_code == 200
    second = await env.create({**BODY, "external_task_id": "b"})
    assert second.status_code == 429 and second.json()["code"] == 1303
    assert (await env.create(BODY, user="bob")).status_code == 200  # the default: no limit
    await call(env, "PATCH", "/users/alice", json={"max_in_flight": None})
    assert (await env.create({**BODY, "external_task_id": "b"})).status_code == 200
    field_error(
        await call(env, "PATCH", "/users/alice", json={"max_in_flight": 0}), "max_in_flight"
    )


@pytest.mark.parametrize(
    "settings_overrides",
    [{"admin_token": ADMIN, "channel_probe_seconds": 0, "key_max_in_flight": 1}],
)
async def test_per_key_override_beats_the_global_default(env: Env) -> None:
    keys = (await call(env, "GET", "/users/alice/keys")).json()["data"]
    await call(env, "PATCH", f"/keys/{keys[0]['id']}", json={"max_in_flight": 3})
    codes = [(await env.create(BODY)).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert [(await env.create(BODY, user="bob")).status_code for _ in range(2)] == [200, 429]


async def test_per_key_rate_override(env: Env) -> None:
    keys = (await call(env, "GET", "/users/alice/keys")).json()["data"]
    res = await call(
        env, "PATCH", f"/keys/{keys[0]['id']}", json={"rate_per_second": 1, "rate_burst": 2}
    )
    assert res.json()["data"]["limits"]["rate_per_second"] == "1"
    codes = [(await env.create(BODY)).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert (await env.create(BODY)).json()["code"] == 1302
    env.clock.advance(1.1)
    assert (await env.create(BODY)).status_code == 200
    field_error(
        await call(env, "PATCH", f"/keys/{keys[0]['id']}", json={"rate_per_second": 0}),
        "rate_per_second",
    )


async def test_daily_spend_cap_per_user_and_per_key(env: Env) -> None:
    first = await env.create(BODY)
    assert first.status_code == 200
    price = (await call(env, "GET", "/users/alice/statement")).json()["data"]["items"][0]["amount"]
    await call(env, "PATCH", "/users/alice", json={"daily_spend": price.lstrip("-")})
    refused = await env.create(BODY)
    assert refused.status_code == 429 and refused.json()["code"] == 1102
    assert "daily spend cap" in refused.json()["message"]
    await call(env, "PATCH", "/users/alice", json={"daily_spend": None})
    keys = (await call(env, "GET", "/users/alice/keys")).json()["data"]
    await call(env, "PATCH", f"/keys/{keys[0]['id']}", json={"daily_spend": "0"})
    assert (await env.create(BODY)).json()["code"] == 1102
    env.clock.advance(86_400)  # a new UTC day
    await call(env, "PATCH", f"/keys/{keys[0]['id']}", json={"daily_spend": "1000"})
    assert (await env.create(BODY)).status_code == 200
    field_error(await call(env, "PATCH", "/users/alice", json={"daily_spend": "-3"}), "daily_spend")


async def test_prices_and_models(env: Env) -> None:
    rows = (await call(env, "GET", "/prices")).json()["data"]
    assert rows and {"model_name", "mode", "kind", "credits_per_second"} <= set(rows[0])
    row = {"model_name": "kling-v1", "mode": "*", "kind": "voice", "credits_per_second": "9.5"}
    res = await call(env, "PUT", "/prices", json=row)
    assert row in res.json()["data"]
    field_error(await call(env, "PUT", "/prices", json={**row, "kind": "loud"}), "kind")
    field_error(
        await call(env, "PUT", "/prices", json={**row, "credits_per_second": "x"}),
        "credits_per_second",
    )
    res = await call(env, "DELETE", "/prices/kling-v1/*/voice")
    assert row not in res.json()["data"]
    assert (await call(env, "DELETE", "/prices/kling-v1/*/voice")).status_code == 404
    res = await call(env, "PUT", "/models/fast", json={"target": "kling-v2-6"})
    fast = next(m for m in res.json()["data"] if m["model_name"] == "fast")
    assert fast["alias"] is True and fast["upstream_model"] == "kling-v2-6"
    field_error(await call(env, "PUT", "/models/fast", json={}), "target")
    res = await call(env, "DELETE", "/models/fast")
    assert all(m["model_name"] != "fast" for m in res.json()["data"])
    assert (await call(env, "DELETE", "/models/fast")).status_code == 404


async def test_task_search_detail_and_overview(env: Env) -> None:
    a = (await env.create({**BODY, "external_task_id": "mine-1"})).json()["data"]["task_id"]
    await env.create({"model_name": "kling-v2-6", "prompt": "b"}, user="bob")
    await env.run_until_idle(8)
    page = (await call(env, "GET", "/tasks?user=alice&kind=text2video")).json()["data"]
    assert [t["task_id"] for t in page["items"]] == [a] and page["has_more"] is False
    assert page["items"][0]["upstream_account"] == "simulator"
    both = (await call(env, "GET", "/tasks?page_size=1")).json()["data"]
    assert len(both["items"]) == 1 and both["has_more"] is True
    assert (await call(env, "GET", "/tasks?model=kling-v2-6")).json()["data"]["items"][0][
        "user"
    ] == "bob"
    assert (await call(env, "GET", "/tasks?status=failed")).json()["data"]["items"] == []
    assert (await call(env, "GET", f"/tasks?until={env.gw.now_ms() - 60_000}")).json()["data"][
        "items"
    ] == []
    field_error(await call(env, "GET", "/tasks?kind=image2video"), "kind")
    field_error(await call(env, "GET", "/tasks?status=done"), "status")
    field_error(await call(env, "GET", "/tasks?since=yesterday"), "since")
    field_error(await call(env, "GET", "/tasks?external_task_id=mine-1"), "external_task_id")
    field_error(await call(env, "GET", "/tasks?colour=red"), "colour")
    found = (await call(env, "GET", "/tasks?user=alice&external_task_id=mine-1")).json()["data"]
    assert [t["task_id"] for t in found["items"]] == [a]

    detail = (await call(env, "GET", f"/tasks/{a}")).json()["data"]
    assert detail["status"] == "succeed" and detail["request"]["prompt"] == "a fox"
    assert detail["upstream_account"] == "simulator" and detail["upstream_task_id"]
    history = detail["status_history"]
    assert [h["status"] for h in history[:2]] == ["queued", "submitted"]
    assert history[-1]["status"] == "succeed" and history[-1]["by"] == "poll"
    assert [h["by"] for h in history[:2]] == ["create", "submit"]
    assert [h["at"] for h in history] == sorted(h["at"] for h in history)
    cost = detail["cost"]
    assert cost["closed"] and cost["settled"] is not None and cost["refunded"] is None
    assert detail["deliveries"] == []
    by_ext = (await call(env, "GET", "/tasks/mine-1?user=alice")).json()["data"]
    assert by_ext["task_id"] == a
    alone = await call(env, "GET", "/tasks/mine-1")  # one user's external id: found without ?user=
    assert alone.status_code == 200 and alone.json()["data"]["task_id"] == a

    figures = (await call(env, "GET", "/overview?days=3")).json()["data"]
    assert figures["tasks_by_status"] == {"succeed": 2} and figures["success_rate"] == 1.0
    assert figures["render_ms"]["count"] == 2 and figures["render_ms"]["p50"] > 0
    assert len(figures["days"]) == 3 and figures["days"][-1]["tasks"] == 2
    assert figures["days"][-1]["spend"] != "0"
    assert figures["accounts"][0]["name"] == "simulator" and figures["accounts"][0]["state"] == "ok"
    field_error(await call(env, "GET", "/overview?days=0"), "days")
    field_error(await call(env, "GET", "/overview?window=1"), "window")
