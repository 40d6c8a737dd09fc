"""Helpers for the per-kind simulator tests: a valid body per kind, and create-then-finish."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from kling_gateway.upstream.simulator.mp4 import mp4_duration

from .conftest import Harness

IMAGE = "https://example.com/a.png"
FOREIGN_VIDEO = "https://example.com/v.mp4"

# kind -> (body, the duration Kling would report: the requested seconds plus its 0.1 overrun, or
# the assumed length of a video the simulator did not make)
CREATES: dict[str, tuple[dict[str, Any], str]] = {
    "image2video": ({"image": IMAGE, "duration": "10"}, "10.1"),
    "multi-image2video": ({"image_list": [{"image": IMAGE}], "prompt": "p"}, "5.1"),
    "omni-video": ({"prompt": "p", "aspect_ratio": "1:1", "duration": "10"}, "10.1"),
    "motion-control": (
        {
            "image_url": IMAGE,
            "video_url": FOREIGN_VIDEO,
            "character_orientation": "video",
            "mode": "std",
        },
        "5.0",
    ),
    "effects": (
        {"effect_scene": "bloombloom", "input": {"image": IMAGE, "duration": "10"}},
        "10.1",
    ),
}


async def create(harness: Harness, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await harness.client.post(f"/v1/videos/{kind}", json=body, headers=harness.auth())
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    assert data["task_status"] == "submitted"
    return data


async def _finished(harness: Harness, kind: str, task_id: str) -> dict[str, Any]:
    harness.tick(10)
    response = await harness.get(f"/v1/videos/{kind}/{task_id}")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    assert data["task_status"] == "succeed"
    return data


async def _mp4_seconds(harness: Harness, url: str) -> float:
    response = await harness.client.get(urlsplit(url).path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    return mp4_duration(response.content)


async def made(harness: Harness, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """A finished task of ``kind``; its MP4 lasts exactly what its result reports."""
    created = await create(harness, kind, body)
    task = await _finished(harness, kind, created["task_id"])
    video = task["task_result"]["videos"][0]
    assert set(video) == {"id", "url", "duration"}
    assert await _mp4_seconds(harness, video["url"]) == pytest.approx(float(video["duration"]))
    return task
