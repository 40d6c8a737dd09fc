"""The gateway end to end against the simulator, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from kling_gateway.domain.ids import looks_like_public_id
from tests.conftest import TEXT2VIDEO, Env, both_databases

database_url = both_databases


async def test_create_reaches_succeed_and_is_readable_by_both_ids(env: Env) -> None:
    resp = await env.create(
        {"model_name": "kling-v2-6", "prompt": "a fox", "external_task_id": "mine-1"}
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["code"] == 0 and body["message"] == "SUCCEED"
    assert body["request_id"] == resp.headers["x-request-id"]
    data = body["data"]
    task_id = data["task_id"]
    assert looks_like_public_id(task_id)
    assert data["task_status"] == "submitted"
    assert data["task_info"] == {"external_task_id": "mine-1"}

    upstream = next(iter(env.sim.store.tasks.values()))
    assert upstream.task_id != task_id
    assert (
        env.sim.external_id_count(task_id) == 1
    )  # our public id went upstream as external_task_id
    assert env.sim.external_id_count("mine-1") == 0  # the client's own id stayed with us

    await env.run_until_idle(8)
    for ident in (task_id, "mine-1"):
        got = (await env.get(ident)).json()["data"]
        assert got["task_id"] == task_id
        assert got["task_status"] == "succeed"
        assert got["task_info"] == {"external_task_id": "mine-1"}
        videos = got["task_result"]["videos"]
        assert len(videos) == 1 and videos[0]["url"].endswith(".mp4")
        assert got["watermark_info"] == {"enabled": False}
        assert got["updated_at"] >= got["created_at"]
        assert upstream.task_id not in (await env.get(ident)).text


async def test_root_prefix_and_get_with_json_content_type(env: Env) -> None:
    resp = await env.client.post(
        "/v1/videos/text2video", json={"model_name": "kling-v1", "prompt": "x"}, headers=env.auth()
    )
    assert resp.status_code == 200
    task_id = resp.json()["data"]["task_id"]
    got = await env.client.get(
        f"/v1/videos/text2video/{task_id}",
        headers={**env.auth(), "Content-Type": "application/json"},
    )
    assert got.status_code == 200 and got.json()["data"]["task_id"] == task_id


async def test_list_pages_newest_first_and_only_own_tasks(env: Env) -> None:
    mine = []
    for i in range(5):
        resp = await env.create({"model_name": "kling-v1", "prompt": f"p{i}"})
        mine.append(resp.json()["data"]["task_id"])
        env.clock.advance(0.01)
    await env.create({"model_name": "kling-v1", "prompt": "bob's"}, user="bob")

    page1 = (
        await env.client.get(TEXT2VIDEO, params={"pageNum": 1, "pageSize": 2}, headers=env.auth())
    ).json()
    page3 = (
        await env.client.get(TEXT2VIDEO, params={"pageNum": 3, "pageSize": 2}, headers=env.auth())
    ).json()
    everything = (await env.client.get(TEXT2VIDEO, headers=env.auth())).json()["data"]
    assert [t["task_id"] for t in page1["data"]] == mine[::-1][:2]
    assert [t["task_id"] for t in page3["data"]] == [mine[0]]
    assert [t["task_id"] for t in everything] == mine[::-1]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"pageNum": 0}, "pageNum"),
        ({"pageNum": 1001}, "pageNum"),
        ({"pageSize": 0}, "pageSize"),
        ({"pageSize": 501}, "pageSize"),
        ({"pageSize": "ten"}, "pageSize"),
    ],
)
async def test_list_paging_bounds(env: Env, params: dict[str, int | str], field: str) -> None:
    resp = await env.client.get(TEXT2VIDEO, params=params, headers=env.auth())
    assert resp.status_code == 400
    assert resp.json()["code"] == 1201 and field in resp.json()["message"]


async def test_list_paging_accepts_the_edges(env: Env) -> None:
    for params in ({"pageNum": 1000, "pageSize": 500}, {"pageNum": 1, "pageSize": 1}):
        assert (
            await env.client.get(TEXT2VIDEO, params=params, headers=env.auth())
        ).status_code == 200


async def test_other_users_tasks_look_absent(env: Env) -> None:
    resp = await env.create(
        {"model_name": "kling-v1", "prompt": "x", "external_task_id": "shared-name"}
    )
    task_id = resp.json()["data"]["task_id"]
    for ident in (task_id, "shared-name"):
        got = await env.get(ident, user="bob")
        assert got.status_code == 404
        assert got.json()["code"] == 1203
    missing = await env.get("100000000000000000", user="bob")
    assert got.json()["message"].replace("shared-name", "X") != ""  # same shape as a missing id
    assert missing.status_code == 404 and missing.json()["code"] == 1203


async def test_same_external_id_is_per_user(env: Env) -> None:
    a = await env.create({"model_name": "kling-v1", "prompt": "x", "external_task_id": "e"})
    b = await env.create(
        {"model_name": "kling-v1", "prompt": "x", "external_task_id": "e"}, user="bob"
    )
    assert a.status_code == b.status_code == 200
    assert a.json()["data"]["task_id"] != b.json()["data"]["task_id"]


async def test_idempotent_retry_and_conflicting_body(env: Env) -> None:
    body = {"model_name": "kling-v1", "prompt": "x", "duration": 5, "external_task_id": "retry-me"}
    first = await env.create(body)
    again = await env.create({**body, "duration": "5"})  # same request after normalisation
    assert again.status_code == 200
    assert again.json()["data"]["task_id"] == first.json()["data"]["task_id"]
    assert env.sim.tasks_created() == 1
    other = await env.create({**body, "prompt": "something else"})
    assert other.status_code == 400
    assert other.json()["code"] == 1201 and "external_task_id" in other.json()["message"]
    assert env.sim.tasks_created() == 1


async def test_failed_task_reports_reason(env: Env) -> None:
    env.sim.config.task_failure_rate = 1.0
    task_id = (await env.create({"model_name": "kling-v1", "prompt": "x"})).json()["data"][
        "task_id"
    ]
    await env.run_until_idle(8)
    got = (await env.get(task_id)).json()["data"]
    assert got["task_status"] == "failed"
    assert got["task_status_msg"]
    assert "task_result" not in got


async def test_duration_integer_is_forwarded_as_string(env: Env) -> None:
    resp = await env.create({"model_name": "kling-v3", "prompt": "x", "duration": 7})
    assert resp.status_code == 200
    (sent,) = env.sent_bodies()
    assert sent["duration"] == "7"
    assert sent["external_task_id"] == resp.json()["data"]["task_id"]
    assert "callback_url" not in sent
