"""The kind registry: one entry per kind, each validating through the same call."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from kling_gateway.domain.kinds.common import Context
from kling_gateway.domain.kinds.images import MAX_IMAGE_BYTES
from kling_gateway.domain.kinds.registry import (
    KINDS,
    TEXT_ALLOWANCE,
    base64_size,
    body_cap,
    kind_for_path,
)
from kling_gateway.domain.kinds.table import ANY_MODEL
from kling_gateway.domain.request import extract_model_name, validate_text2video
from tests.domain.kinds.media import PNG, b64, png

EXAMPLES = Path("/work/shared/reference/kling-examples.json")
VIDEO = "https://example.com/v.mp4"

# A minimal valid body per kind, sent through the registry exactly as the create path will.
MINIMAL: dict[str, dict[str, Any]] = {
    "text2video": {"prompt": "a fox"},
    "image2video": {"image": PNG},
    "multi-image2video": {"image_list": [{"image": PNG}], "prompt": "p"},
    "omni-video": {"prompt": "p", "aspect_ratio": "1:1"},
    "video-extend": {"video_id": "1"},
    "identify-face": {"video_url": VIDEO},
    "advanced-lip-sync": {
        "session_id": "s",
        "face_choose": [{"face_id": "0", "audio_id": "a"}],
        "sound_start_time": 0,
        "sound_end_time": 2000,
        "sound_insert_time": 0,
    },
    "motion-control": {
        "image_url": PNG,
        "video_url": VIDEO,
        "character_orientation": "video",
        "mode": "std",
    },
    "effects": {"effect_scene": "bloombloom", "input": {"image": PNG}},
}


def test_every_kind_is_registered_once_with_its_kling_path() -> None:
    assert sorted(KINDS) == sorted(MINIMAL)
    for name, kind in KINDS.items():
        assert kind.path == f"/v1/videos/{name}"
        assert kind_for_path(kind.path) is kind
        assert kind.table_key == name
    assert kind_for_path("/v1/videos/lip-sync") is None


@pytest.mark.parametrize("name", sorted(MINIMAL))
def test_each_kind_validates_through_the_registry(name: str) -> None:
    kind = KINDS[name]
    body = MINIMAL[name]
    row = kind.model_of(body)
    caps = kind.table[row]
    result = kind.validate(body, Context(caps, upstream_model=None if row == ANY_MODEL else row))
    assert result.kind == name
    assert (result.duration is not None) == kind.has_duration
    if row == ANY_MODEL:
        assert result.model_name is None
        assert "model_name" not in result.upstream_body


def test_flags() -> None:
    assert [n for n, k in KINDS.items() if k.synchronous] == ["identify-face"]
    assert sorted(n for n, k in KINDS.items() if k.maps_video_id) == [
        "identify-face",
        "video-extend",
    ]
    assert {k.billing for k in KINDS.values()} == {"requested", "output", "task"}


@pytest.mark.parametrize("name", sorted(json.loads(EXAMPLES.read_text())["create_requests"]))
def test_text2video_entry_matches_the_existing_validator(name: str) -> None:
    body = json.loads(EXAMPLES.read_text())["create_requests"][name]
    kind = KINDS["text2video"]
    caps = kind.table[kind.model_of(body)]
    direct = validate_text2video(copy.deepcopy(body), caps=caps, upstream_model=caps.name)
    wrapped = kind.validate(copy.deepcopy(body), Context(caps))
    assert extract_model_name(body) == kind.model_of(body)
    assert wrapped.upstream_body == direct.upstream_body
    assert (wrapped.mode, wrapped.duration, wrapped.sound, wrapped.voice_control) == (
        direct.mode,
        direct.duration,
        direct.sound,
        direct.voice_control,
    )


def test_body_caps_follow_the_largest_valid_body() -> None:
    image = base64_size(MAX_IMAGE_BYTES)
    assert image == 13_981_016
    assert KINDS["text2video"].max_body_bytes == TEXT_ALLOWANCE
    assert KINDS["multi-image2video"].max_body_bytes == 4 * image + TEXT_ALLOWANCE
    assert KINDS["omni-video"].max_body_bytes == 7 * image + TEXT_ALLOWANCE
    assert KINDS["image2video"].max_body_bytes == 8 * image + TEXT_ALLOWANCE
    assert body_cap(audio=1) == base64_size(5 * 1024 * 1024) + TEXT_ALLOWANCE


def test_a_real_body_at_the_image_limit_fits_its_cap_and_validates() -> None:
    raw = png(320, 320)
    big = b64(raw + bytes(MAX_IMAGE_BYTES - len(raw)))
    body = {**MINIMAL["motion-control"], "image_url": big, "prompt": "p" * 2500}
    kind = KINDS["motion-control"]
    assert len(orjson.dumps(body)) <= kind.max_body_bytes
    kind.validate(body, Context(kind.table[kind.model_of(body)]))
