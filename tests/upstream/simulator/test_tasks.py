"""Task lifecycle, lookup, listing, concurrency and external-id uniqueness."""

from __future__ import annotations

import uuid

import pytest

from .conftest import Harness

T2V = "/v1/videos/text2video"


async def test_create_response_shape(harness: Harness) -> None:
    response = await harness.create({"prompt": "p", "external_task_id": "ext-1"})
    assert response.status_code == 200
    body = response.json()
    assert body["code"] == 0 and body["message"] == "SUCCEED"
    uuid.UUID(body["request_id"])
    data = body["data"]
    assert set(data) == {"task_id", "task_status", "task_info", "created_at", "updated_at"}
    assert data["task_id"].isdigit() and len(data["task_id"]) == 18
    assert data["task_status"] == "submitted"
    assert data["task_info"] == {"external_task_id": "ext-1"}
    assert data["created_at"] == data["updated_at"] == int(harness.clock() * 1000)


async def test_task_info_is_empty_without_external_id(harness: Harness) -> None:
    data = (await harness.create()).json()["data"]
    assert data["task_info"] == {}


async def test_query_by_task_id_and_external_id(harness: Harness) -> None:
    created = (await harness.create({"prompt": "p", "external_task_id": "ext-q"})).json()["data"]
    by_id = (await harness.get(f"{T2V}/{created['task_id']}")).json()["data"]
    by_ext = (await harness.get(f"{T2V}/ext-q")).json()["data"]
    assert by_id == by_ext
    assert by_id == {
        "task_id": created["task_id"],
        "task_status": "submitted",
        "task_status_msg": "",
        "task_info": {"external_task_id": "ext-q"},
        "created_at": created["created_at"],
        "updated_at": created["updated_at"],
        "watermark_info": {"enabled": False},
    }


async def test_unknown_task_is_404_1203(harness: Harness) -> None:
    response = await harness.get(f"{T2V}/123456789012345678")
    assert response.status_code == 404
    assert response.json()["code"] == 1203


async def test_status_progression_follows_the_clock(harness: Harness) -> None:
    created = (await harness.create({"prompt": "p", "duration": "10", "mode": "pro"})).json()[
        "data"
    ]
    path = f"{T2V}/{created['task_id']}"
    t0 = created["created_at"]
    harness.clock.advance(0.99)
    assert (await harness.get(path)).json()["data"]["task_status"] == "submitted"
    harness.clock.advance(0.02)
    data = (await harness.get(path)).json()["data"]
    assert data["task_status"] == "processing"
    assert data["updated_at"] == t0 + 1000  # the scheduled instant, not the poll time
    assert "task_result" not in data and "final_unit_deduction" not in data
    harness.clock.advance(10)
    data = (await harness.get(path)).json()["data"]
    assert data["task_status"] == "succeed"
    assert data["updated_at"] == t0 + 4000
    assert data["final_unit_deduction"] == "8"
    [video] = data["task_result"]["videos"]
    uuid.UUID(video["id"])
    assert video["url"] == f"http://127.0.0.1:8001/results/{video['id']}.mp4"
    assert video["duration"] == "10.1"
    assert "watermark_url" not in video


async def test_watermark_url_only_when_enabled(harness: Harness) -> None:
    created = (await harness.create({"prompt": "p", "watermark_info": {"enabled": True}})).json()[
        "data"
    ]
    harness.clock.advance(5)
    data = (await harness.get(f"{T2V}/{created['task_id']}")).json()["data"]
    assert data["watermark_info"] == {"enabled": True}
    video = data["task_result"]["videos"][0]
    assert video["watermark_url"].endswith(f"/results/{video['id']}-wm.mp4")


async def test_failed_tasks(harness: Harness) -> None:
    harness.sim.config.task_failure_rate = 1.0
    created = (await harness.create()).json()["data"]
    harness.clock.advance(4)
    data = (await harness.get(f"{T2V}/{created['task_id']}")).json()["data"]
    assert data["task_status"] == "failed"
    assert data["task_status_msg"] == "Failure to pass the risk control system"
    assert data["final_unit_deduction"] == "0"
    assert "task_result" not in data


async def test_timing_is_fixed_at_creation(harness: Harness) -> None:
    created = (await harness.create()).json()["data"]
    harness.sim.config.submitted_seconds = 100
    harness.clock.advance(1.5)
    data = (await harness.get(f"{T2V}/{created['task_id']}")).json()["data"]
    assert data["task_status"] == "processing"


async def test_list_is_newest_first_and_paged(harness: Harness) -> None:
    ids = []
    for i in range(5):
        ids.append((await harness.create({"prompt": f"p{i}"})).json()["data"]["task_id"])
        harness.clock.advance(0.001)
    newest_first = ids[::-1]
    default = (await harness.get(T2V)).json()["data"]
    assert [t["task_id"] for t in default] == newest_first
    page1 = (await harness.get(f"{T2V}?pageNum=1&pageSize=2")).json()["data"]
    page3 = (await harness.get(f"{T2V}?pageNum=3&pageSize=2")).json()["data"]
    page4 = (await harness.get(f"{T2V}?pageNum=4&pageSize=2")).json()["data"]
    assert [t["task_id"] for t in page1] == newest_first[:2]
    assert [t["task_id"] for t in page3] == newest_first[4:]
    assert page4 == []
    assert set(default[0]) >= {"task_id", "task_status", "task_status_msg", "watermark_info"}


@pytest.mark.parametrize(
    "query",
    ["pageNum=0", "pageNum=1001", "pageSize=0", "pageSize=501", "pageNum=x", "pageSize=1.5"],
)
async def test_list_params_out_of_range_are_1201(harness: Harness, query: str) -> None:
    response = await harness.get(f"{T2V}?{query}")
    assert response.status_code == 400
    assert response.json()["code"] == 1201


async def test_list_accepts_the_range_bounds(harness: Harness) -> None:
    assert (await harness.get(f"{T2V}?pageNum=1000&pageSize=500")).status_code == 200


async def test_concurrency_limit_per_model_and_release(harness: Harness) -> None:
    harness.sim.config.concurrency_per_model = 2
    assert (await harness.create()).status_code == 200
    assert (await harness.create()).status_code == 200
    refused = await harness.create()
    assert refused.status_code == 429
    body = refused.json()
    assert body["code"] == 1303
    assert body["message"] == "parallel task over resource pack limit"
    assert "data" not in body
    assert harness.sim.tasks_created() == 2
    # another model has its own slots
    assert (await harness.create({"prompt": "p", "model_name": "kling-v2-6"})).status_code == 200
    harness.clock.advance(1.5)  # processing still holds the slot
    assert (await harness.create()).status_code == 429
    harness.clock.advance(3)  # terminal frees them at once, failure included
    assert (await harness.create()).status_code == 200
    assert harness.sim.stats()["concurrency_refused"] == 2


async def test_failed_tasks_free_their_slot(harness: Harness) -> None:
    harness.sim.config.concurrency_per_model = 1
    harness.sim.config.task_failure_rate = 1.0
    assert (await harness.create()).status_code == 200
    harness.clock.advance(4)
    assert (await harness.create()).status_code == 200


async def test_duplicate_external_id_is_refused_and_counted(harness: Harness) -> None:
    body = {"prompt": "p", "external_task_id": "dup-1"}
    first = await harness.create(body)
    assert first.status_code == 200
    second = await harness.create(body)
    assert second.status_code == 400
    assert second.json()["code"] == 1201
    assert second.json()["message"] == "external_task_id already exists"
    # still refused after the first one finished
    harness.clock.advance(10)
    assert (await harness.create(body)).status_code == 400
    sim = harness.sim
    assert sim.external_id_count("dup-1") == 1
    assert sim.duplicate_attempts["dup-1"] == 2
    assert sim.stats()["duplicates_refused"] == 2
    assert sim.tasks_created() == 1


async def test_stats_count_statuses(harness: Harness) -> None:
    harness.sim.config.task_failure_rate = 0.5
    for _ in range(20):
        await harness.create()
    stats = (await harness.client.get("/__sim/stats")).json()["data"]
    assert stats["tasks_by_status"] == {"submitted": 20, "processing": 0, "succeed": 0, "failed": 0}
    harness.clock.advance(4)
    by_status = (await harness.client.get("/__sim/stats")).json()["data"]["tasks_by_status"]
    assert by_status["succeed"] + by_status["failed"] == 20
    assert 0 < by_status["failed"] < 20


async def test_reset_forgets_tasks(harness: Harness) -> None:
    await harness.create({"prompt": "p", "external_task_id": "r-1"})
    reset = await harness.client.post("/__sim/reset")
    assert reset.json()["data"]["tasks_created"] == 0
    assert (await harness.create({"prompt": "p", "external_task_id": "r-1"})).status_code == 200


async def test_many_tasks_stay_fast_to_list(harness: Harness) -> None:
    sim = harness.sim
    sim.config.concurrency_per_model = 100_000
    from kling_gateway.upstream.simulator.validation import validate_create

    spec = validate_create({"prompt": "p"})
    for _ in range(10_000):
        sim.create_task("sim-ak", spec)
    page = (await harness.get(f"{T2V}?pageNum=2&pageSize=500")).json()["data"]
    assert len(page) == 500
    harness.clock.advance(5)
    assert sim.stats()["tasks_by_status"]["succeed"] == 10_000
