"""Lip-sync: ``identify-face`` (synchronous) and ``advanced-lip-sync`` (kling-video-family.md §6).

identify-face names a video (a Kling video id, which the caller maps like extend's, or a URL) and
answers with a session and faces; advanced-lip-sync then puts audio on one of those faces. Neither
has a model, mode or duration: the output is as long as the input video.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kling_gateway.domain._checks import fail, is_number, show
from kling_gateway.domain.kinds import common as c
from kling_gateway.domain.kinds.b64 import Base64Data, parse_base64
from kling_gateway.domain.kinds.images import MiB, check_url, check_video_url, is_url
from kling_gateway.domain.kinds.table import ANY_MODEL, KindTable, count

IDENTIFY = "identify-face"
LIP_SYNC = "advanced-lip-sync"
MAX_AUDIO_BYTES = 5 * MiB
MIN_AUDIO_MS = 2000  # the cropped audio, and its overlap with the face, must last 2 s
MAX_VOLUME = 2
MAX_ID = 128
IDENTIFY_FIELDS = frozenset({"video_id", "video_url"})
LIP_SYNC_FIELDS = frozenset(
    {
        "session_id",
        "face_choose",
        "sound_start_time",
        "sound_end_time",
        "sound_insert_time",
        "sound_volume",
        "original_audio_volume",
        *c.ENVELOPE_FIELDS,
    }
)
_TIMES = ("sound_start_time", "sound_end_time", "sound_insert_time")


@dataclass(frozen=True, slots=True)
class LipSyncCaps:
    name: str
    faces: int  # Kling "only supports one person" today


DEFAULT_TABLE = KindTable(LIP_SYNC, LipSyncCaps, {"faces": count(1)}, {ANY_MODEL: {"faces": 1}})


def validate_identify_face(body: Any, ctx: c.Context[LipSyncCaps]) -> c.KindRequest:
    """Exactly one of ``video_id`` (the caller maps it) or ``video_url``."""
    out = c.start(body, IDENTIFY_FIELDS, ctx, has_model=False)
    has_id, has_url = body.get("video_id") is not None, body.get("video_url") is not None
    if has_id == has_url:
        fail("video_id", "give exactly one of video_id and video_url")
    video_id = c.required_text(body, "video_id", MAX_ID) if has_id else None
    if has_url:
        check_video_url("video_url", body["video_url"])
    return c.KindRequest(
        kind=IDENTIFY,
        model_name=None,
        mode=None,
        duration=None,
        watermark=False,
        external_task_id=None,  # synchronous: no task to find again
        callback_url=None,
        upstream_body=out,
        source_video_id=video_id,
    )


def validate_lip_sync(body: Any, ctx: c.Context[LipSyncCaps]) -> c.KindRequest:
    out = c.start(body, LIP_SYNC_FIELDS, ctx, has_model=False)
    c.required_text(body, "session_id", MAX_ID)
    raw = body.get("face_choose")
    if raw is None:
        fail("face_choose", "required")
    faces = c.array("face_choose", raw, ctx.caps.faces, "faces")
    if not faces:
        fail("face_choose", "must hold one face (got 0)")
    for pos, face in enumerate(faces):
        _face(f"face_choose[{pos}]", c.item(f"face_choose[{pos}]", face, "a face_id"))
    start, end, _insert = (_millis(body, field) for field in _TIMES)
    if end - start < MIN_AUDIO_MS:
        fail(
            "sound_end_time",
            f"must be at least {MIN_AUDIO_MS} ms after sound_start_time (got {end - start} ms)",
        )
    for field in ("sound_volume", "original_audio_volume"):
        _volume(field, body.get(field))
    env = c.envelope(body, ctx)
    return c.KindRequest(
        kind=LIP_SYNC,
        model_name=None,
        mode=None,
        duration=None,  # the input video's length, known when the task ends
        watermark=env.watermark,
        external_task_id=env.external_task_id,
        callback_url=env.callback_url,
        upstream_body=out,
    )


def _face(where: str, face: dict[str, Any]) -> None:
    face_id = face.get("face_id")
    if not isinstance(face_id, str) or not face_id:
        fail(f"{where}.face_id", f"required: the face_id from identify-face (got {show(face_id)})")
    audio_id, sound = face.get("audio_id"), face.get("sound_file")
    if (audio_id is None) == (sound is None):
        fail(f"{where}.audio_id", "give exactly one of audio_id and sound_file")
    if audio_id is not None and (not isinstance(audio_id, str) or not audio_id.strip()):
        fail(f"{where}.audio_id", f"must be a non-empty string (got {show(audio_id)})")
    if sound is not None:
        check_audio(f"{where}.sound_file", sound)


def check_audio(field: str, value: object) -> None:
    """An audio URL (shape only) or raw base64 mp3/wav/m4a/aac of at most 5 MB."""
    if not isinstance(value, str) or not value:
        fail(field, f"must be an audio URL or raw base64 (got {show(value)})")
    if is_url(value):
        check_url(field, value)
        return
    if not _is_audio(parse_base64(field, value, MAX_AUDIO_BYTES)):
        fail(field, "must be mp3, wav, m4a or aac audio (the data is none of them)")


def _is_audio(data: Base64Data) -> bool:
    head = data.read(0, 12)
    mpeg_sync = len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0  # mp3 and ADTS aac
    wav = head[:4] == b"RIFF" and head[8:12] == b"WAVE"
    return head.startswith(b"ID3") or mpeg_sync or wav or head[4:8] == b"ftyp"


def _millis(body: dict[str, Any], field: str) -> int:
    value = body.get(field)
    if value is None:
        fail(field, "required (milliseconds)")
    if not is_number(value) or not isinstance(value, int) or value < 0:
        fail(field, f"must be a whole number of milliseconds >= 0 (got {show(value)})")
    return value


def _volume(field: str, value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        fail(field, f"must be a number (got {show(value)})")
    if not 0 <= value <= MAX_VOLUME:  # NaN compares false, so it is refused too
        fail(field, f"must be between 0 and {MAX_VOLUME} (got {show(value)})")
