"""Fault injection on create and query, patched at runtime through /__sim/config."""

from __future__ import annotations

import asyncio
import time

import pytest

from .conftest import Harness

T2V = "/v1/videos/text2video"


async def patch(harness: Harness, **fields: object) -> dict[str, object]:
    response = await harness.client.post("/__sim/config", json=fields)
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()["data"]
    return data


@pytest.mark.parametrize(("code", "status"), [(5000, 500), (5001, 503), (1302, 429)])
async def test_create_error_rejects_before_creating(
    harness: Harness, code: int, status: int
) -> None:
    await patch(harness, create_error_rate=1.0, create_error_code=code)
    response = await harness.create({"prompt": "p", "external_task_id": "e-1"})
    assert response.status_code == status
    assert response.json()["code"] == code
    assert harness.sim.tasks_created() == 0
    assert (await harness.get(f"{T2V}/e-1")).status_code == 404
    await patch(harness, create_error_rate=0.0)
    assert (await harness.create({"prompt": "p", "external_task_id": "e-1"})).status_code == 200


async def test_ambiguous_error_creates_the_task_but_answers_500(harness: Harness) -> None:
    await patch(harness, ambiguous_error_rate=1.0)
    response = await harness.create({"prompt": "p", "external_task_id": "amb-1"})
    assert response.status_code == 500
    assert response.json()["code"] == 5000
    assert harness.sim.external_id_count("amb-1") == 1
    found = await harness.get(f"{T2V}/amb-1")
    assert found.status_code == 200
    assert found.json()["data"]["task_status"] == "submitted"
    # a blind retry is caught by external id uniqueness
    retry = await harness.create({"prompt": "p", "external_task_id": "amb-1"})
    assert retry.json()["message"] == "external_task_id already exists"
    assert harness.sim.stats()["ambiguous_injected"] == 1


async def test_hang_creates_the_task_and_never_answers_in_time(harness: Harness) -> None:
    await patch(harness, hang_rate=1.0, hang_seconds=30.0)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(harness.create({"prompt": "p", "external_task_id": "hang-1"}), 0.1)
    assert harness.sim.external_id_count("hang-1") == 1
    await patch(harness, hang_rate=0.0)
    assert (await harness.get(f"{T2V}/hang-1")).status_code == 200
    assert harness.sim.stats()["hangs_injected"] == 1


async def test_short_hang_eventually_answers_success(harness: Harness) -> None:
    await patch(harness, hang_rate=1.0, hang_seconds=0.01)
    response = await harness.create()
    assert response.status_code == 200


async def test_latency_is_added_to_every_request(harness: Harness) -> None:
    await patch(harness, latency_seconds=0.05)
    start = time.perf_counter()
    await harness.get(T2V)
    assert time.perf_counter() - start >= 0.05


async def test_get_errors(harness: Harness) -> None:
    created = (await harness.create()).json()["data"]
    await patch(harness, get_error_rate=1.0)
    for path in (f"{T2V}/{created['task_id']}", T2V):
        response = await harness.get(path)
        assert response.status_code == 500
        assert response.json()["code"] == 5000
    assert harness.sim.stats()["get_errors_injected"] == 2


async def test_partial_rates_are_deterministic_with_a_seed(harness: Harness) -> None:
    async def outcomes() -> list[int]:
        await patch(harness, seed=42, create_error_rate=0.5, concurrency_per_model=1000)
        return [(await harness.create()).status_code for _ in range(30)]

    first = await outcomes()
    assert first == await outcomes()
    assert 200 in first and 500 in first


async def test_config_endpoint_reads_and_rejects_bad_patches(harness: Harness) -> None:
    current = (await harness.client.get("/__sim/config")).json()["data"]
    assert current["access_keys"] == {"sim-ak": "sim-sk"}
    assert current["api_keys"] == []
    for bad in (
        {"nope": 1},
        {"task_failure_rate": 2},
        {"hang_seconds": "x"},
        {"concurrency_per_model": True},
    ):
        response = await harness.client.post(
            "/__sim/config", json={"create_error_rate": 0.5, **bad}
        )
        assert response.status_code == 400
        assert response.json()["code"] == 1201
    assert harness.sim.config.create_error_rate == 0.0  # nothing applied from a rejected patch
    assert (await harness.client.post("/__sim/config", content=b"[]")).status_code == 400
    data = await patch(harness, api_keys=["k1"], webhook_secret=None, processing_seconds=2)
    assert data["api_keys"] == ["k1"]
    assert harness.sim.config.api_keys == {"k1"}
    assert harness.sim.config.processing_seconds == 2.0


async def test_unknown_routes_and_methods_use_the_envelope(harness: Harness) -> None:
    missing = await harness.client.get("/v1/nothing")
    assert missing.status_code == 404 and missing.json()["code"] == 1203
    wrong = await harness.client.delete(T2V)
    assert wrong.status_code == 404 and wrong.json()["code"] == 1202
