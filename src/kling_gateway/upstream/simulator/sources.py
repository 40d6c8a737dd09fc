"""How long each kind's output is, from what its body points at (kling-video-family.md §4–§7), and
identify-face's sessions.

The simulator never fetches media: a video it produced itself (by id, or by its result URL) has
a known length; anything else is assumed to last ``unknown_media_seconds``.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from kling_gateway.domain.kinds import effects, extend, lipsync, motion
from kling_gateway.domain.kinds import omni as omni_video
from kling_gateway.domain.kinds.common import KindRequest

from .core import Simulator
from .envelope import SimFailure
from .kinds import (
    OVERRUN_MILLIS,
    KindSpec,
    duration_text,
    make_spec,
    output_millis,
    parent_view,
    requested_millis,
    round_millis,
)
from .store import Session, Task

MAX_EXTENDED_MILLIS = 180_000  # an extended video may last at most 3 minutes (§5)
MAX_FACE_VIDEO_MILLIS = 60_000  # identify-face takes videos of at most 60 s (§6.1)
SESSION_SECONDS = 24 * 3600.0
IDENTIFY_UNITS = 0.05  # per call (§9, low confidence)
_RESULT_PATH = re.compile(r"/results/([^/?#]+)\.mp4(?:[?#].*)?$")


def own_video(sim: Simulator, account: str, video_id: str) -> Task:
    """A finished video of this account that is still kept; Kling refuses any other (1201, as it
    answers an unknown task id)."""
    task = sim.video_task(video_id)
    if task is None or task.video_id != video_id or task.account != account:
        raise SimFailure(1201, f"video_id '{video_id}' not found: no such video, or it has expired")
    return task


def url_millis(sim: Simulator, url: str) -> tuple[int, bool]:
    """A video URL's length, and whether it is known (one of the simulator's own results)."""
    found = _RESULT_PATH.search(url)
    task = sim.video_task(found.group(1)) if found else None
    if task is None:
        return round_millis(sim.config.unknown_media_seconds), False
    return output_millis(task), True


def plan(sim: Simulator, account: str, request: KindRequest, body: dict[str, Any]) -> KindSpec:
    """The spec of a task about to be created: its output length and parent video."""
    kind = request.kind
    if kind == extend.KIND:
        assert request.source_video_id is not None  # the validator requires it
        source = own_video(sim, account, request.source_video_id)
        millis = output_millis(source) + round_millis(sim.config.extend_seconds)
        if millis > MAX_EXTENDED_MILLIS:
            raise SimFailure(1201, "video_id: the extended video would last over 3 minutes")
        return make_spec(request, millis, parent_view(source))
    if kind == lipsync.LIP_SYNC:
        return _lip_sync(sim, account, request, body)
    if request.duration is not None:
        return make_spec(request, requested_millis(request.duration))
    if kind == effects.KIND:  # a scene that names no duration
        millis = round_millis(sim.config.effects_seconds) + OVERRUN_MILLIS
        return make_spec(request, millis)
    if kind == motion.KIND:
        return make_spec(request, url_millis(sim, body["video_url"])[0])
    if kind == omni_video.KIND:  # a base-video edit lasts as long as the video it edits
        return make_spec(request, url_millis(sim, body["video_list"][0]["video_url"])[0])
    raise AssertionError(f"no output length rule for kind {kind}")


def _lip_sync(sim: Simulator, account: str, request: KindRequest, body: dict[str, Any]) -> KindSpec:
    """The output keeps the identified video's length. When that length is only assumed, the
    audio placed on it stretches it; when it is known, the audio must fit inside (§6.2)."""
    session = sim.store.sessions.get(body["session_id"])
    if (
        session is None
        or session.account != account
        or sim.clock() - session.created >= SESSION_SECONDS
    ):
        raise SimFailure(1201, "session_id is invalid or has expired")
    for face in body["face_choose"]:
        if face["face_id"] != "0":
            raise SimFailure(1201, f"face_id '{face['face_id']}' is not in this session")
    audio_end = body["sound_insert_time"] + body["sound_end_time"] - body["sound_start_time"]
    millis = session.millis
    if audio_end > millis:
        if session.known:
            raise SimFailure(1201, "sound_insert_time: the audio must stay inside the video")
        millis = -(-audio_end // 100) * 100  # up to whole tenths
    return make_spec(request, millis, session.parent)


def identify_face(sim: Simulator, account: str, request: KindRequest) -> dict[str, Any]:
    """The synchronous answer: a session and the one face found, lip-syncable throughout."""
    if request.source_video_id is not None:
        source = own_video(sim, account, request.source_video_id)
        millis, known, parent = output_millis(source), True, parent_view(source)
    else:
        url = request.upstream_body["video_url"]
        millis, known = url_millis(sim, url)
        parent = {"url": url, "duration": duration_text(millis)}
    if millis > MAX_FACE_VIDEO_MILLIS:
        raise SimFailure(1201, "the video must last at most 60 seconds")
    session_id = str(uuid.UUID(int=sim.rng.getrandbits(128), version=4))
    sim.store.sessions[session_id] = Session(account, sim.clock(), millis, known, parent)
    sim.store.units_used[account] += IDENTIFY_UNITS
    base = sim.config.public_base_url.rstrip("/")
    return {
        "session_id": session_id,
        "final_unit_deduction": format(IDENTIFY_UNITS, "g"),
        "final_balance_deduction": {"quota": "0", "list_price": "0"},
        "face_data": [
            {
                "face_id": "0",
                "face_image": f"{base}/results/{session_id}-face-0.png",
                "start_time": 0,
                "end_time": millis,
            }
        ],
    }
