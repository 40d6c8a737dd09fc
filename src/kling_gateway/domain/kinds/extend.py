"""``POST /v1/videos/video-extend``: 4–5 more seconds of an earlier video (reference §5).

The model and mode are the source video's; the body only names the video. Its ``video_id`` is the
client's: the caller maps it to the upstream id of one of the caller's own tasks, never another
user's, so the request value carries it apart from the forwarded body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kling_gateway.domain._checks import fail
from kling_gateway.domain.kinds import common as c
from kling_gateway.domain.kinds.table import ANY_MODEL, KindTable, flag

KIND = "video-extend"
MAX_VIDEO_ID = 128
KNOWN_FIELDS = frozenset({"video_id", "prompt", "negative_prompt", "cfg_scale", *c.ENVELOPE_FIELDS})


@dataclass(frozen=True, slots=True)
class ExtendCaps:
    name: str
    # The body lists both, while the 2025 map says they are not supported (§5, §11.8): on by
    # default, for the operator to switch off if Kling refuses them.
    negative_prompt: bool
    cfg_scale: bool


SCHEMA = {"negative_prompt": flag(), "cfg_scale": flag()}
DEFAULT_TABLE = KindTable(
    KIND, ExtendCaps, SCHEMA, {ANY_MODEL: {"negative_prompt": True, "cfg_scale": True}}
)


def validate_extend(body: Any, ctx: c.Context[ExtendCaps]) -> c.KindRequest:
    out = c.start(body, KNOWN_FIELDS, ctx, has_model=False)
    caps = ctx.caps
    video_id = c.required_text(body, "video_id", MAX_VIDEO_ID)
    c.prompt(body)
    for field, supported in (
        ("negative_prompt", caps.negative_prompt),
        ("cfg_scale", caps.cfg_scale),
    ):
        if body.get(field) is not None and not supported:
            fail(field, f"not supported for {KIND}")
    c.prompt(body, "negative_prompt")
    c.cfg_scale(body.get("cfg_scale"), True, "")
    env = c.envelope(body, ctx)
    return c.KindRequest(
        kind=KIND,
        model_name=None,
        mode=None,
        duration=None,  # Kling adds 4–5 s; the billed length is the result's
        watermark=env.watermark,
        external_task_id=env.external_task_id,
        callback_url=env.callback_url,
        upstream_body=out,
        source_video_id=video_id,
    )
