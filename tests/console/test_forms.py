"""Every console form validates like the admin API: a bad value comes back (400) with the API's own
message beside its field and nothing changes; a good one changes what the API then reports."""

from __future__ import annotations

import html
from typing import Any

import httpx
import pytest

from kling_gateway.services import channel_admin, money_admin, tasks_admin, users_admin
from tests.conftest import Env
from tests.console.conftest import ORIGIN

Client = tuple[httpx.AsyncClient, str]


async def post(client: Client, path: str, data: dict[str, str]) -> httpx.Response:
    http, csrf = client
    return await http.post(path, data={**data, "csrf": csrf}, headers={"Origin": ORIGIN})


def field_error(res: httpx.Response, field: str) -> str:
    """The text of the error shown beside ``field`` (400 and present, or the test fails)."""
    assert res.status_code == 400, res.text
    marker = f'id="error-{field}">'
    assert marker in res.text, f"no error beside {field}: {res.text}"
    return html.unescape(res.text.split(marker, 1)[1].split("<", 1)[0])


async def api_message(env: Env, token: str, method: str, path: str, body: Any) -> str:
    res = await env.client.request(
        method, path, json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert res.status_code == 400, res.text
    return str(res.json()["message"])


async def test_user_limits_refused_with_the_api_message_then_set(
    env: Env, signed_in: Client, token: str
) -> None:
    await users_admin.create_user(env.gw, "dora")
    before = await users_admin.show_user(env.gw, "dora")
    bad = {"user": "dora", "name": "dora", "max_in_flight": "lots", "daily_spend": ""}
    res = await post(signed_in, "/console/user", bad)
    expected = await api_message(
        env, token, "PATCH", "/admin/v1/users/dora", {"max_in_flight": "lots"}
    )
    assert field_error(res, "max_in_flight") == expected
    assert await users_admin.show_user(env.gw, "dora") == before

    res = await post(signed_in, "/console/user", {**bad, "daily_spend": "-2", "max_in_flight": ""})
    assert "daily_spend" in field_error(res, "daily_spend")
    good = {**bad, "max_in_flight": "3", "rate_per_second": "0.5", "daily_spend": "12.5"}
    res = await post(signed_in, "/console/user", good)
    assert res.status_code == 303
    limits = (await users_admin.show_user(env.gw, "dora"))["limits"]
    assert limits == {
        "max_in_flight": 3,
        "rate_per_second": "0.5",
        "rate_burst": None,
        "daily_spend": "12.5",
    }


async def test_rename_to_a_taken_name_is_refused_and_a_name_with_a_slash_works(
    env: Env, signed_in: Client
) -> None:
    await users_admin.create_user(env.gw, "eve")
    res = await post(signed_in, "/console/user", {"user": "eve", "name": "alice"})
    assert "exists" in field_error(res, "name")
    res = await post(signed_in, "/console/user", {"user": "eve", "name": "eve/ops & co?"})
    assert res.status_code == 303 and res.headers["location"].endswith("name=eve%2Fops+%26+co%3F")
    page = await signed_in[0].get(res.headers["location"])
    assert page.status_code == 200 and "eve/ops &amp; co?" in page.text
    assert 'href="/console/money?user=eve%2Fops%20%26%20co%3F"' in page.text


async def test_key_settings_refused_field_by_field_then_set(env: Env, signed_in: Client) -> None:
    key = (await users_admin.keys_of(env.gw, "alice"))[0]
    path, kid = "/console/key", str(key["id"])
    cases = [
        ({"allowed_ips": "10.0.0.0/33"}, "allowed_ips"),
        ({"models": "no-such-model"}, "models"),
        ({"expires_days": "soon"}, "expires_days"),
        ({"expires_days": "-4"}, "expires_days"),
        ({"rate_burst": "0"}, "rate_burst"),
        ({"name": "x" * 65}, "name"),
    ]
    for data, field in cases:
        res = await post(signed_in, path, {"id": kid, **data})
        assert field_error(res, field), data
    assert await users_admin.keys_of(env.gw, "alice") == [key]

    good = {
        "id": kid,
        "name": "ops",
        "allowed_ips": "10.0.0.0/8, 192.168.1.7",
        "models": "kling-v2-6",
        "expires_days": "30",
        "max_in_flight": "2",
        "daily_spend": "5",
    }
    res = await post(signed_in, path, good)
    assert res.status_code == 303, res.text
    (changed,) = await users_admin.keys_of(env.gw, "alice")
    assert changed["allowed_ips"] == ["10.0.0.0/8", "192.168.1.7/32"]
    assert changed["models"] == ["kling-v2-6"] and changed["name"] == "ops"
    assert changed["expires_at"] == env.gw.now_ms() + 30 * 86_400_000
    assert changed["limits"]["max_in_flight"] == 2 and changed["limits"]["daily_spend"] == "5"
    res = await post(signed_in, path, {"id": kid, "no_expiry": "true", "models": ""})
    (cleared,) = await users_admin.keys_of(env.gw, "alice")
    assert cleared["expires_at"] is None and cleared["models"] is None
    assert cleared["allowed_ips"] == changed["allowed_ips"]  # not on the form: unchanged


async def test_multiplier_and_the_statement_csv(env: Env, signed_in: Client, token: str) -> None:
    res = await post(signed_in, "/console/money/multiplier", {"user": "alice", "multiplier": "x"})
    expected = await api_message(
        env, token, "PUT", "/admin/v1/users/alice/multiplier", {"multiplier": "x"}
    )
    assert field_error(res, "multiplier") == expected
    res = await post(signed_in, "/console/money/multiplier", {"user": "alice", "multiplier": "0.8"})
    assert res.status_code == 303
    assert (await users_admin.show_user(env.gw, "alice"))["price_multiplier"] == "0.8"
    await money_admin.adjust(env.gw, "alice", "7", "for the csv", debit=False)
    csv = await signed_in[0].get("/console/money/statement.csv?user=alice")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.text == await money_admin.statement_csv(env.gw, "alice")
    assert "for the csv" in csv.text
    page = await signed_in[0].get("/console/money?user=alice")
    assert 'href="/console/money/statement.csv?user=alice"' in page.text


async def test_task_search_by_the_clients_external_id(env: Env, signed_in: Client) -> None:
    body = {"model_name": "kling-v2-6", "prompt": "fox", "external_task_id": "fox-1"}
    for user in ("alice", "bob"):
        assert (await env.create(body, user=user)).status_code == 200
    bob = (await tasks_admin.find(env.gw, "fox-1", "bob")).id
    res = await signed_in[0].get("/console/tasks?external_task_id=fox-1")
    assert "give user too" in field_error(res, "external_task_id")
    res = await signed_in[0].get("/console/tasks?external_task_id=fox-1&user=bob")
    assert res.status_code == 200 and f'data-task="{bob}"' in res.text
    assert res.text.count("data-task=") == 1


async def test_channel_edit_refused_then_applied(env: Env, signed_in: Client) -> None:
    before = await channel_admin.show(env.gw, "simulator")
    edit = "/console/channels/simulator/edit"
    res = await post(signed_in, edit, {"priority": "1", "weight": "heavy", "has_enabled": "1"})
    assert field_error(res, "weight") == "weight: must be an integer"
    res = await post(signed_in, edit, {"weight": "20000", "has_enabled": "1", "enabled": "true"})
    assert "between 0 and 10000" in field_error(res, "weight")
    assert await channel_admin.show(env.gw, "simulator") == before
    res = await post(signed_in, edit, {"priority": "3", "weight": "7", "has_enabled": "1"})
    assert res.status_code == 303
    after = await channel_admin.show(env.gw, "simulator")
    assert (after["priority"], after["weight"], after["enabled"]) == (3, 7, False)
    missing = await post(signed_in, "/console/channels/nowhere/edit", {"weight": "1"})
    assert missing.status_code == 404
    assert "no upstream account named 'nowhere'" in html.unescape(missing.text)


@pytest.mark.parametrize(
    "data,field",
    [
        ({"name": "bad name!", "base_url": "http://x", "api_key": "k"}, "name"),
        ({"name": "ok", "base_url": "ftp://x", "api_key": "k"}, "base_url"),
        ({"name": "ok", "base_url": "http://x", "access_key": "a-only-1"}, "access_key"),
    ],
)
async def test_channel_add_errors_beside_their_fields(
    env: Env, signed_in: Client, data: dict[str, str], field: str
) -> None:
    res = await post(signed_in, "/console/channels", data)
    assert field_error(res, field)
    assert "a-only-1" not in res.text  # credentials never come back
    assert [c["name"] for c in await channel_admin.describe(env.gw)] == ["simulator"]


async def test_prices_and_aliases(env: Env, signed_in: Client) -> None:
    before = await money_admin.prices(env.gw)
    bad = {"model_name": "kling-v2-6", "mode": "*", "kind": "loud", "credits_per_second": "1"}
    assert "kind" in field_error(await post(signed_in, "/console/prices", bad), "kind")
    bad = {**bad, "kind": "silent", "credits_per_second": "free"}
    assert field_error(await post(signed_in, "/console/prices", bad), "credits_per_second")
    assert await money_admin.prices(env.gw) == before

    row = before[0]
    gone = {k: row[k] for k in ("model_name", "mode", "kind")}
    assert (await post(signed_in, "/console/prices/delete", gone)).status_code == 303
    assert row not in await money_admin.prices(env.gw)
    again = await post(signed_in, "/console/prices/delete", gone)
    assert "no price for" in field_error(again, "price")

    res = await post(signed_in, "/console/models", {"alias": "fast", "target": "no-such"})
    assert field_error(res, "target")
    res = await post(signed_in, "/console/models", {"alias": "fast", "target": "kling-v2-6"})
    assert res.status_code == 303
    assert {
        m["model_name"]: m["alias"] for m in await money_admin.models(env.gw) if m["alias"]
    } == {"fast": True}
    res = await post(signed_in, "/console/models/delete", {"alias": "fast"})
    assert res.status_code == 303
    assert not [m for m in await money_admin.models(env.gw) if m["alias"]]
    res = await post(signed_in, "/console/models/delete", {"alias": "fast"})
    assert "has no route" in field_error(res, "unmap")
