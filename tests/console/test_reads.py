"""The console's figures and task pages on SQLite and PostgreSQL alike (day arithmetic is in SQL)."""

from __future__ import annotations

from kling_gateway.console import api
from kling_gateway.storage.console_reads import TaskFilter
from tests.conftest import Env, both_databases

database_url = both_databases


async def test_overview_and_task_pages_from_real_tasks(env: Env) -> None:
    ids = []
    for prompt in ("one", "two", "three"):
        res = await env.create({"model_name": "kling-v2-6", "prompt": prompt})
        ids.append(res.json()["data"]["task_id"])
    await env.create({"model_name": "kling-v2-6", "prompt": "bob's"}, user="bob")
    await env.run_until_idle()
    o = await api.overview(env.gw)
    assert o.counts == {"succeed": 4} and o.success_rate == 1.0
    assert o.tasks_per_day[-1] == 4 and sum(o.tasks_per_day) == 4 and len(o.day_labels) == 14
    assert o.spend_per_day[-1] != "0" and o.render_p[50] is not None

    alice = await api.user_id(env.gw, "alice")
    page1 = await api.tasks(env.gw, TaskFilter(user_id=alice), 0, 2)
    page2 = await api.tasks(env.gw, TaskFilter(user_id=alice), 2, 2)
    assert [r.task.id for r in page1 + page2] == ids[::-1] and page1[0].user_name == "alice"
    assert await api.tasks(env.gw, TaskFilter(model="kling-v1"), 0, 10) == []
    assert await api.tasks(env.gw, TaskFilter(since_ms=env.gw.now_ms() + 1), 0, 10) == []
    detail = await api.task(env.gw, ids[0], "http://gw")
    assert detail is not None and detail.account == "simulator" and detail.videos[0]["url"]
