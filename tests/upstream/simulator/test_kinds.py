"""Every task kind beyond text2video: create, poll, result MP4 length, lookup by kind, refusals."""

from __future__ import annotations

from typing import Any

import pytest

from kling_gateway.upstream.simulator.mp4 import mp4_duration, mp4_lasting, tiny_mp4

from .conftest import Harness
from .kinds_support import CREATES, FOREIGN_VIDEO, IMAGE, create, made


@pytest.mark.parametrize("millis", [1, 3000, 5100, 9600, 180_000])
def test_mp4_lasting_reports_its_length_in_the_movie_header(millis: int) -> None:
    data = mp4_lasting(millis)
    assert data[4:8] == b"ftyp"
    assert mp4_duration(data) == pytest.approx(millis / 1000)


def test_the_text2video_mp4_keeps_its_one_second() -> None:
    assert mp4_duration(tiny_mp4()) == 1.0
    assert len(mp4_lasting(1000)) == len(tiny_mp4())  # same frames, only the timing differs


def test_mp4_lasting_refuses_an_empty_length() -> None:
    with pytest.raises(ValueError):
        mp4_lasting(0)


@pytest.mark.parametrize("data", [b"", tiny_mp4()[:40], b"\x00\x00\x00\x04moov"])
def test_mp4_duration_refuses_a_file_without_a_movie_header(data: bytes) -> None:
    with pytest.raises(ValueError, match=r"no (moov|mvhd) box"):
        mp4_duration(data)


@pytest.mark.parametrize("kind", sorted(CREATES))
async def test_a_kind_renders_the_length_kling_would_return(harness: Harness, kind: str) -> None:
    body, expected = CREATES[kind]
    task = await made(harness, kind, {**body, "external_task_id": f"ext-{kind}"})
    assert task["task_result"]["videos"][0]["duration"] == expected
    assert task["task_info"] == {"external_task_id": f"ext-{kind}"}
    assert float(task["final_unit_deduction"]) > 0
    by_external = await harness.get(f"/v1/videos/{kind}/ext-{kind}")
    assert by_external.json()["data"] == task
    listed = (await harness.get(f"/v1/videos/{kind}?pageNum=1&pageSize=10")).json()["data"]
    assert listed == [task]


async def test_effects_without_a_duration_lasts_the_configured_scene_length(
    harness: Harness,
) -> None:
    harness.sim.config.effects_seconds = 10
    task = await made(harness, "effects", {"effect_scene": "x", "input": {"image": IMAGE}})
    assert task["task_result"]["videos"][0]["duration"] == "10.1"


async def test_motion_control_follows_a_reference_video_the_simulator_made(
    harness: Harness,
) -> None:
    source = await made(harness, "image2video", {"image": IMAGE, "duration": "10"})
    body = {**CREATES["motion-control"][0], "video_url": source["task_result"]["videos"][0]["url"]}
    task = await made(harness, "motion-control", body)
    assert task["task_result"]["videos"][0]["duration"] == "10.1"


async def test_an_omni_base_edit_lasts_as_long_as_the_video_it_edits(harness: Harness) -> None:
    source = await made(harness, "multi-image2video", CREATES["multi-image2video"][0])
    edit = {"video_list": [{"video_url": source["task_result"]["videos"][0]["url"]}]}
    task = await made(harness, "omni-video", {"prompt": "make it snow", **edit})
    assert task["task_result"]["videos"][0]["duration"] == "5.1"
    foreign = await made(
        harness, "omni-video", {"prompt": "p", "video_list": [{"video_url": FOREIGN_VIDEO}]}
    )
    assert foreign["task_result"]["videos"][0]["duration"] == "5.0"


# --- lookups are per kind ------------------------------------------------------------------------


async def test_a_task_is_not_found_under_another_kinds_path(harness: Harness) -> None:
    task = await create(harness, "image2video", {"image": IMAGE, "external_task_id": "e-1"})
    t2v = (await harness.create({"prompt": "p"})).json()["data"]
    for kind in ("effects", "text2video", "video-extend", "omni-video"):
        for key in (task["task_id"], "e-1"):
            response = await harness.get(f"/v1/videos/{kind}/{key}")
            assert (response.status_code, response.json()["code"]) == (404, 1203)
    response = await harness.get(f"/v1/videos/image2video/{t2v['task_id']}")
    assert (response.status_code, response.json()["code"]) == (404, 1203)


async def test_listings_hold_one_kind_each(harness: Harness) -> None:
    i2v = await create(harness, "image2video", {"image": IMAGE})
    t2v = (await harness.create({"prompt": "p"})).json()["data"]
    listed = {
        kind: [t["task_id"] for t in (await harness.get(f"/v1/videos/{kind}")).json()["data"]]
        for kind in ("image2video", "text2video", "effects")
    }
    assert listed == {
        "image2video": [i2v["task_id"]],
        "text2video": [t2v["task_id"]],
        "effects": [],
    }
    bad = await harness.get("/v1/videos/effects?pageSize=501")
    assert bad.json()["code"] == 1201


# --- refusals map to Kling's codes ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "body", "code", "field"),
    [
        ("image2video", {"duration": "5"}, 1201, "image"),
        ("image2video", {"image": IMAGE, "model_name": "kling-v9"}, 1201, "model_name"),
        ("image2video", ["not", "an", "object"], 1200, "object"),
        ("multi-image2video", {"image_list": [{"image": IMAGE}]}, 1201, "prompt"),
        ("omni-video", {"prompt": "p"}, 1201, "aspect_ratio"),
        ("video-extend", {}, 1201, "video_id"),
        ("identify-face", {}, 1201, "video_id"),
        ("advanced-lip-sync", {"session_id": "s"}, 1201, "face_choose"),
        (
            "motion-control",
            {"image_url": IMAGE, "mode": "std", "character_orientation": "video"},
            1201,
            "video_url",
        ),
        ("effects", {"effect_scene": "kiss", "input": {"image": IMAGE}}, 1201, "effect_scene"),
        (
            "effects",
            {"effect_scene": "x", "input": {"image": "data:image/png;base64,AA"}},
            1201,
            "input.image",
        ),
    ],
)
async def test_an_invalid_body_gets_klings_code(
    harness: Harness, kind: str, body: Any, code: int, field: str
) -> None:
    response = await harness.client.post(f"/v1/videos/{kind}", json=body, headers=harness.auth())
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert field in response.json()["message"]
    assert harness.sim.tasks_created() == 0


async def test_a_body_that_is_not_json_is_1200(harness: Harness) -> None:
    response = await harness.client.post("/v1/videos/effects", content=b"{", headers=harness.auth())
    assert response.json()["code"] == 1200


async def test_kinds_need_authentication(harness: Harness) -> None:
    response = await harness.client.post("/v1/videos/effects", json=CREATES["effects"][0])
    assert response.status_code == 401


async def test_a_failed_task_of_another_kind_has_no_result(harness: Harness) -> None:
    harness.sim.config.task_failure_rate = 1.0
    created = await create(harness, "image2video", {"image": IMAGE})
    harness.tick(10)
    task = (await harness.get(f"/v1/videos/image2video/{created['task_id']}")).json()["data"]
    assert task["task_status"] == "failed" and task["task_status_msg"]
    assert "task_result" not in task and task["final_unit_deduction"] == "0"
