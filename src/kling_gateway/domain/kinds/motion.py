"""``POST /v1/videos/motion-control``: a character image moved like a reference video (§7.1).

No duration: the output follows the reference video, so it is billed on the output's length.
The video is a URL only; its length and size limits are Kling's to check, as the gateway never
fetches it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kling_gateway.domain._checks import fail, one_of
from kling_gateway.domain.kinds import common as c
from kling_gateway.domain.kinds.images import ImageRule, check_image, check_video_url
from kling_gateway.domain.kinds.table import KindTable, count, modes

KIND = "motion-control"
DEFAULT_MODEL = "kling-v2-6"
ORIENTATIONS = ("image", "video")
YES_NO = ("yes", "no")
CHARACTER = ImageRule(max_side=65536)  # sides 300–65536 px (§7.1)
KNOWN_FIELDS = frozenset(
    {
        "model_name",
        "image_url",
        "video_url",
        "character_orientation",
        "mode",
        "prompt",
        "keep_original_sound",
        "element_list",
        *c.ENVELOPE_FIELDS,
    }
)


@dataclass(frozen=True, slots=True)
class MotionCaps:
    name: str
    modes: frozenset[str] | None
    elements: int  # most element_list items


SCHEMA = {"modes": modes(), "elements": count()}
# The legacy page allows one element; the new API offers it on 3.0 only (medium), so kling-v2-6
# has none until an operator raises it.
DEFAULT_TABLE = KindTable(
    KIND,
    MotionCaps,
    SCHEMA,
    {
        "kling-v2-6": {"modes": ["std", "pro"]},
        "kling-v3": {"modes": ["std", "pro"], "elements": 1},
    },
)


def validate_motion(body: Any, ctx: c.Context[MotionCaps]) -> c.KindRequest:
    out = c.start(body, KNOWN_FIELDS, ctx)
    caps = ctx.caps
    model = c.model_name(body, DEFAULT_MODEL)
    c.prompt(body)
    raw_mode = body.get("mode")
    if raw_mode is None:  # required here, unlike the other kinds
        fail("mode", "required (std or pro)")
    mode = c.mode(raw_mode, caps.modes, model, out, "std")
    image = body.get("image_url")
    if image is None:
        fail("image_url", "required")
    check_image("image_url", image, CHARACTER)
    check_video_url("video_url", body.get("video_url"))
    orientation = body.get("character_orientation")
    if orientation is None:
        fail("character_orientation", "required (image or video)")
    one_of("character_orientation", orientation, ORIENTATIONS)
    sound = body.get("keep_original_sound")
    if sound is not None:
        one_of("keep_original_sound", sound, YES_NO)
    c.elements(body, caps.elements, model)
    env = c.envelope(body, ctx)
    return c.KindRequest(
        kind=KIND,
        model_name=model,
        mode=mode,
        duration=None,  # the output's length, known when the task ends
        watermark=env.watermark,
        external_task_id=env.external_task_id,
        callback_url=env.callback_url,
        upstream_body=out,
    )
