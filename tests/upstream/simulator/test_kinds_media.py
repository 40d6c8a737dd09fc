"""Kinds built on other videos: video-extend, identify-face and advanced-lip-sync, and callbacks."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from .conftest import Harness
from .kinds_support import CREATES, FOREIGN_VIDEO, IMAGE, made

# --- video-extend ---------------------------------------------------------------------------


async def test_extend_adds_its_seconds_to_a_video_of_any_kind(harness: Harness) -> None:
    harness.sim.config.extend_seconds = 4.5
    parent = await made(harness, "effects", CREATES["effects"][0])
    parent_video = parent["task_result"]["videos"][0]
    task = await made(harness, "video-extend", {"video_id": parent_video["id"], "prompt": "on"})
    assert task["task_result"]["videos"][0]["duration"] == "14.6"  # the new total
    assert task["task_info"] == {"parent_video": parent_video}
    again = await made(
        harness, "video-extend", {"video_id": task["task_result"]["videos"][0]["id"]}
    )
    assert again["task_result"]["videos"][0]["duration"] == "19.1"


async def test_extend_of_a_text2video_result(harness: Harness) -> None:
    created = (await harness.create({"prompt": "p", "duration": "5"})).json()["data"]
    harness.tick(10)
    parent = (await harness.get(f"/v1/videos/text2video/{created['task_id']}")).json()["data"]
    video_id = parent["task_result"]["videos"][0]["id"]
    task = await made(harness, "video-extend", {"video_id": video_id})
    assert task["task_info"]["parent_video"]["duration"] == "5.1"
    assert task["task_result"]["videos"][0]["duration"] == "9.6"


@pytest.mark.parametrize("video_id", ["no-such-video", "00000000-0000-4000-8000-000000000000"])
async def test_extend_of_an_unknown_video_is_refused(harness: Harness, video_id: str) -> None:
    response = await harness.client.post(
        "/v1/videos/video-extend", json={"video_id": video_id}, headers=harness.auth()
    )
    assert response.status_code == 400
    assert response.json()["code"] == 1201
    assert "video_id" in response.json()["message"]
    assert harness.sim.tasks_created() == 0


async def test_extend_of_another_accounts_or_an_expired_video_is_refused(
    harness: Harness,
) -> None:
    harness.sim.config.access_keys["other-ak"] = "other-sk"
    video = (await made(harness, "image2video", CREATES["image2video"][0]))["task_result"]
    video_id = video["videos"][0]["id"]
    other = await harness.client.post(
        "/v1/videos/video-extend",
        json={"video_id": video_id},
        headers=harness.auth("other-ak", "other-sk"),
    )
    assert other.json()["code"] == 1201
    harness.tick(harness.sim.config.result_retention_seconds)
    expired = await harness.client.post(
        "/v1/videos/video-extend", json={"video_id": video_id}, headers=harness.auth()
    )
    assert expired.json()["code"] == 1201


async def test_extend_past_three_minutes_is_refused(harness: Harness) -> None:
    harness.sim.config.extend_seconds = 170
    parent = await made(harness, "image2video", {"image": IMAGE, "duration": "5"})
    first = await made(
        harness, "video-extend", {"video_id": parent["task_result"]["videos"][0]["id"]}
    )
    assert first["task_result"]["videos"][0]["duration"] == "175.1"
    response = await harness.client.post(
        "/v1/videos/video-extend",
        json={"video_id": first["task_result"]["videos"][0]["id"]},
        headers=harness.auth(),
    )
    assert response.json()["code"] == 1201
    assert "3 minutes" in response.json()["message"]


# --- identify-face and advanced-lip-sync ---------------------------------------------------------


async def _identify(harness: Harness, body: dict[str, Any]) -> dict[str, Any]:
    response = await harness.client.post(
        "/v1/videos/identify-face", json=body, headers=harness.auth()
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _lip_sync(session_id: str, start: int = 0, end: int = 2000, insert: int = 0) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "face_choose": [{"face_id": "0", "audio_id": "tts-1"}],
        "sound_start_time": start,
        "sound_end_time": end,
        "sound_insert_time": insert,
    }


async def test_identify_face_answers_at_once_without_a_task(harness: Harness) -> None:
    video = (await made(harness, "image2video", CREATES["image2video"][0]))["task_result"]
    before = harness.sim.tasks_created()
    data = await _identify(harness, {"video_id": video["videos"][0]["id"]})
    assert set(data) == {
        "session_id",
        "final_unit_deduction",
        "final_balance_deduction",
        "face_data",
    }
    uuid.UUID(data["session_id"])
    [face] = data["face_data"]
    assert face["face_id"] == "0" and face["face_image"].startswith("http")
    assert (face["start_time"], face["end_time"]) == (0, 10_100)  # the whole video
    assert harness.sim.tasks_created() == before
    read_back = await harness.get("/v1/videos/identify-face")
    assert read_back.json()["code"] == 1202  # no task to list or read


async def test_identify_face_of_an_unknown_video_is_refused(harness: Harness) -> None:
    response = await harness.client.post(
        "/v1/videos/identify-face", json={"video_id": "nope"}, headers=harness.auth()
    )
    assert (response.status_code, response.json()["code"]) == (400, 1201)


async def test_lip_sync_keeps_the_identified_videos_length(harness: Harness) -> None:
    video = (await made(harness, "image2video", CREATES["image2video"][0]))["task_result"]
    session = await _identify(harness, {"video_id": video["videos"][0]["id"]})
    task = await made(harness, "advanced-lip-sync", _lip_sync(session["session_id"]))
    assert task["task_result"]["videos"][0]["duration"] == "10.1"
    assert task["task_info"]["parent_video"] == video["videos"][0]


async def test_lip_sync_on_a_foreign_video_lasts_the_default_or_the_audio(
    harness: Harness,
) -> None:
    session = (await _identify(harness, {"video_url": FOREIGN_VIDEO}))["session_id"]
    short = await made(harness, "advanced-lip-sync", _lip_sync(session))
    assert short["task_result"]["videos"][0]["duration"] == "5.0"
    assert short["task_info"]["parent_video"] == {"url": FOREIGN_VIDEO, "duration": "5.0"}
    body = _lip_sync(session, start=1000, end=6000, insert=2_550)  # audio ends at 7.55 s
    long = await made(harness, "advanced-lip-sync", body)
    assert long["task_result"]["videos"][0]["duration"] == "7.6"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"session_id": "unknown"}, "session_id"),
        ({"face_choose": [{"face_id": "7", "audio_id": "a"}]}, "face_id"),
        ({"sound_insert_time": 9_000}, "sound_insert_time"),  # past the 10.1 s video's end
    ],
)
async def test_lip_sync_refusals(harness: Harness, change: dict[str, Any], field: str) -> None:
    video = (await made(harness, "image2video", CREATES["image2video"][0]))["task_result"]
    session = await _identify(harness, {"video_id": video["videos"][0]["id"]})
    body = {**_lip_sync(session["session_id"], end=2_000), **change}
    response = await harness.client.post(
        "/v1/videos/advanced-lip-sync", json=body, headers=harness.auth()
    )
    assert (response.status_code, response.json()["code"]) == (400, 1201)
    assert field in response.json()["message"]


async def test_a_session_expires_after_a_day(harness: Harness) -> None:
    session = (await _identify(harness, {"video_url": FOREIGN_VIDEO}))["session_id"]
    harness.tick(24 * 3600)
    response = await harness.client.post(
        "/v1/videos/advanced-lip-sync", json=_lip_sync(session), headers=harness.auth()
    )
    assert response.json()["code"] == 1201


async def test_identify_face_refuses_a_video_over_a_minute(harness: Harness) -> None:
    harness.sim.config.extend_seconds = 60
    parent = await made(harness, "image2video", {"image": IMAGE, "duration": "5"})
    longer = await made(
        harness, "video-extend", {"video_id": parent["task_result"]["videos"][0]["id"]}
    )
    assert longer["task_result"]["videos"][0]["duration"] == "65.1"
    response = await harness.client.post(
        "/v1/videos/identify-face",
        json={"video_id": longer["task_result"]["videos"][0]["id"]},
        headers=harness.auth(),
    )
    assert (response.status_code, response.json()["code"]) == (400, 1201)


async def test_the_lengths_are_admin_settings(harness: Harness) -> None:
    patch = {"extend_seconds": 4, "effects_seconds": 3, "unknown_media_seconds": 12.5}
    response = await harness.client.post("/__sim/config", json=patch)
    assert response.json()["data"]["extend_seconds"] == 4.0
    effect = await made(harness, "effects", {"effect_scene": "x", "input": {"image": IMAGE}})
    assert effect["task_result"]["videos"][0]["duration"] == "3.1"
    body = {**CREATES["motion-control"][0], "video_url": FOREIGN_VIDEO}
    motion = await made(harness, "motion-control", body)
    assert motion["task_result"]["videos"][0]["duration"] == "12.5"
    video_id = effect["task_result"]["videos"][0]["id"]
    extended = await made(harness, "video-extend", {"video_id": video_id})
    assert extended["task_result"]["videos"][0]["duration"] == "7.1"
