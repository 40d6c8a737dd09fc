"""identify-face and advanced-lip-sync validation as tables."""

from __future__ import annotations

import math
from typing import Any

import pytest

from kling_gateway.domain.kinds.common import Context, KindRequest
from kling_gateway.domain.kinds.lipsync import (
    DEFAULT_TABLE,
    MAX_AUDIO_BYTES,
    validate_identify_face,
    validate_lip_sync,
)
from kling_gateway.domain.kinds.table import ANY_MODEL
from tests.domain.kinds.media import DROP, PNG, b64, merge, refusal

CTX = Context(DEFAULT_TABLE[ANY_MODEL])
MP3 = b64(b"ID3\x04\x00" + bytes(64))
WAV = b64(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(32))
M4A = b64(b"\x00\x00\x00\x20ftypM4A " + bytes(32))
AAC = b64(b"\xff\xf1\x50\x80" + bytes(32))
URL = "https://example.com/voice.mp3"


def identify(data: Any) -> KindRequest:
    return validate_identify_face(data, CTX)


def lip_sync(data: Any) -> KindRequest:
    return validate_lip_sync(data, CTX)


def sync(face: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    base = {
        "session_id": "s-1",
        "face_choose": [face or {"face_id": "0", "audio_id": "a-1"}],
        "sound_start_time": 0,
        "sound_end_time": 2000,
        "sound_insert_time": 500,
    }
    return merge(base, fields)


@pytest.mark.parametrize(
    ("data", "video_id"),
    [({"video_id": "842250903629086785"}, "842250903629086785"), ({"video_url": URL}, None)],
)
def test_identify_face_accepted(data: dict[str, Any], video_id: str | None) -> None:
    result = identify(data)
    assert result.kind == "identify-face"
    assert result.source_video_id == video_id


IDENTIFY_REJECTED: dict[str, tuple[Any, str]] = {
    "neither": ({}, "video_id: give exactly one of video_id and video_url"),
    "both": ({"video_id": "1", "video_url": URL}, "video_id: give exactly one of"),
    "id blank": ({"video_id": ""}, "video_id: must not be empty"),
    "url base64": ({"video_url": "AAAA"}, "video_url: must be an http or https URL"),
    "model_name": ({"video_id": "1", "model_name": "m"}, "model_name: not accepted"),
}


@pytest.mark.parametrize(
    ("data", "expected"), IDENTIFY_REJECTED.values(), ids=IDENTIFY_REJECTED.keys()
)
def test_identify_face_rejected(data: Any, expected: str) -> None:
    assert refusal(identify, data).startswith(expected)


LIP_SYNC_ACCEPTED = {
    "audio id": sync(),
    "mp3 file": sync({"face_id": "0", "sound_file": MP3}),
    "wav file": sync({"face_id": "0", "sound_file": WAV}),
    "m4a file": sync({"face_id": "0", "sound_file": M4A}),
    "aac file": sync({"face_id": "0", "sound_file": AAC}),
    "audio url": sync({"face_id": "0", "sound_file": URL}),
    "volumes at the bounds": sync(sound_volume=0, original_audio_volume=2),
    "volume float": sync(sound_volume=1.5, watermark_info={"enabled": True}),
}


@pytest.mark.parametrize("data", LIP_SYNC_ACCEPTED.values(), ids=LIP_SYNC_ACCEPTED.keys())
def test_lip_sync_accepted(data: dict[str, Any]) -> None:
    result = lip_sync(data)
    assert result.kind == "advanced-lip-sync"
    assert result.duration is None


LIP_SYNC_REJECTED: dict[str, tuple[Any, str]] = {
    "no session": (sync(session_id=DROP), "session_id: required"),
    "no faces key": (sync(face_choose=DROP), "face_choose: required"),
    "no faces": (sync(face_choose=[]), "face_choose: must hold one face (got 0)"),
    "two faces": (
        sync(face_choose=[{"face_id": "0", "audio_id": "a"}] * 2),
        "face_choose: must hold at most 1 faces (got 2)",
    ),
    "face not object": (sync(face_choose=["0"]), "face_choose[0]: must be an object"),
    "face_id number": (
        sync({"face_id": 0, "audio_id": "a"}),
        "face_choose[0].face_id: required: the face_id from identify-face (got 0)",
    ),
    "no audio": (sync({"face_id": "0"}), "face_choose[0].audio_id: give exactly one of"),
    "both audios": (
        sync({"face_id": "0", "audio_id": "a", "sound_file": MP3}),
        "face_choose[0].audio_id: give exactly one of audio_id and sound_file",
    ),
    "audio id blank": (sync({"face_id": "0", "audio_id": " "}), "face_choose[0].audio_id: must"),
    "sound file png": (
        sync({"face_id": "0", "sound_file": PNG}),
        "face_choose[0].sound_file: must be mp3, wav, m4a or aac audio",
    ),
    "sound file data URL": (
        sync({"face_id": "0", "sound_file": "data:audio/mp3;base64," + MP3}),
        "face_choose[0].sound_file: must be raw base64",
    ),
    "sound file over 5 MB": (
        sync({"face_id": "0", "sound_file": b64(b"ID3" + bytes(MAX_AUDIO_BYTES))}),
        "face_choose[0].sound_file: decodes to 5242883 bytes; the limit is 5242880 bytes",
    ),
    "no start": (sync(sound_start_time=DROP), "sound_start_time: required (milliseconds)"),
    "end float": (sync(sound_end_time=2000.5), "sound_end_time: must be a whole number"),
    "insert negative": (sync(sound_insert_time=-1), "sound_insert_time: must be a whole number"),
    "crop under 2 s": (
        sync(sound_start_time=1000, sound_end_time=2999),
        "sound_end_time: must be at least 2000 ms after sound_start_time (got 1999 ms)",
    ),
    "volume 2.01": (sync(sound_volume=2.01), "sound_volume: must be between 0 and 2 (got 2.01)"),
    "volume nan": (sync(original_audio_volume=math.nan), "original_audio_volume: must be between"),
    "volume string": (sync(sound_volume="1"), "sound_volume: must be a number (got '1')"),
}


@pytest.mark.parametrize(
    ("data", "expected"), LIP_SYNC_REJECTED.values(), ids=LIP_SYNC_REJECTED.keys()
)
def test_lip_sync_rejected(data: Any, expected: str) -> None:
    assert refusal(lip_sync, data).startswith(expected)
