"""The console's figures and task pages come from the admin services, on SQLite and PostgreSQL alike
(day arithmetic is in SQL): the same answers as GET /admin/v1/overview and /admin/v1/tasks."""

from __future__ import annotations

from kling_gateway.console import api
from kling_gateway.services import overview, tasks_admin
from tests.conftest import Env, both_databases
from tests.console.test_forms import Client

database_url = both_databases


async def test_overview_and_task_pages_from_real_tasks(env: Env) -> None:
    ids = []
    for prompt in ("one", "two", "three"):
        res = await env.create({"model_name": "kling-v2-6", "prompt": prompt})
        ids.append(res.json()["data"]["task_id"])
    await env.create({"model_name": "kling-v2-6", "prompt": "bob's"}, user="bob")
    await env.run_until_idle()
    o = await api.figures(env.gw)
    assert o == await overview.overview(env.gw, 14 * 24, 14)
    assert o["tasks_by_status"] == {"succeed": 4} and o["success_rate"] == 1.0
    assert o["days"][-1]["tasks"] == 4 and len(o["days"]) == 14
    assert o["days"][-1]["spend"] != "0" and o["render_ms"]["p50"] is not None
    assert [a["name"] for a in o["accounts"]] == ["simulator"]

    page1 = await api.tasks(env.gw, {"user": "alice", "page_size": "2"})
    page2 = await api.tasks(env.gw, {"user": "alice", "page_size": "2", "page": "2"})
    assert page1 == await tasks_admin.search(env.gw, {"user": "alice", "page_size": "2"})
    assert [r["task_id"] for r in page1["items"] + page2["items"]] == ids[::-1]
    assert page1["has_more"] and not page2["has_more"]
    assert page1["items"][0]["user"] == "alice" and page1["items"][0]["prompt"] == "three"
    assert (await api.tasks(env.gw, {"model": "kling-v1"}))["items"] == []
    detail = await api.task(env.gw, ids[0], "http://gw")
    assert detail["upstream_account"] == "simulator" and detail["videos"][0]["url"]
    assert detail["cost"]["settled"] is not None
    statuses = [h["status"] for h in detail["status_history"]]
    assert statuses[0] == "queued" and statuses[-1] == "succeed"


async def test_the_task_page_shows_the_status_history(env: Env, signed_in: Client) -> None:
    res = await env.create({"model_name": "kling-v2-6", "prompt": "fox"})
    task_id = res.json()["data"]["task_id"]
    await env.run_until_idle()
    page = (await signed_in[0].get(f"/console/tasks/{task_id}")).text
    rows = page.split('id="status-history"', 1)[1].split("</table>", 1)[0]
    for status, by in (("queued", "create"), ("submitted", "submit"), ("succeed", "poll")):
        assert f">{status}</td>" in rows and f"<td>{by}</td>" in rows
