"""``POST /v1/videos/multi-image2video``: up to four reference images and a required prompt.

Rules from kling-video-family.md §3: only ``kling-v1-6``, no cropping on Kling's side, so every
image must already meet the first-frame rule (≤ 10 MB, ≥ 300 px, 1:2.5 to 2.5:1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kling_gateway.domain._checks import fail, one_of
from kling_gateway.domain.kinds import common as c
from kling_gateway.domain.kinds.images import FIRST_FRAME, check_image
from kling_gateway.domain.kinds.table import KindTable, count, durations, modes

KIND = "multi-image2video"
DEFAULT_MODEL = "kling-v1-6"
ASPECT_RATIOS = ("16:9", "9:16", "1:1")
KNOWN_FIELDS = frozenset(
    {
        "model_name",
        "image_list",
        "prompt",
        "negative_prompt",
        "mode",
        "duration",
        "aspect_ratio",
        *c.ENVELOPE_FIELDS,
    }
)


@dataclass(frozen=True, slots=True)
class MultiImageCaps:
    name: str
    modes: frozenset[str] | None
    durations: frozenset[int]
    images: int  # most image_list items


SCHEMA = {"modes": modes(), "durations": durations(), "images": count(1)}
DEFAULT_TABLE = KindTable(
    KIND,
    MultiImageCaps,
    SCHEMA,
    {"kling-v1-6": {"modes": ["std", "pro"], "durations": [5, 10], "images": 4}},
)


def validate_multi_image(body: Any, ctx: c.Context[MultiImageCaps]) -> c.KindRequest:
    out = c.start(body, KNOWN_FIELDS, ctx)
    caps = ctx.caps
    model = c.model_name(body, DEFAULT_MODEL)
    c.prompt(body, required="")
    c.prompt(body, "negative_prompt")
    mode = c.mode(body.get("mode"), caps.modes, model, out, "std")
    seconds = c.duration(body.get("duration"), caps.durations, model)
    out["duration"] = str(seconds)
    aspect = body.get("aspect_ratio")
    if aspect is not None:
        one_of("aspect_ratio", aspect, ASPECT_RATIOS)

    raw = body.get("image_list")
    if raw is None:
        fail("image_list", "required")
    images = c.array("image_list", raw, caps.images, "images")
    if not images:
        fail("image_list", f"must hold 1 to {caps.images} images (got 0)")
    for pos, entry in enumerate(images):
        where = f"image_list[{pos}]"
        check_image(f"{where}.image", c.item(where, entry, "an image").get("image"), FIRST_FRAME)

    env = c.envelope(body, ctx)
    return c.KindRequest(
        kind=KIND,
        model_name=model,
        mode=mode,
        duration=seconds,
        watermark=env.watermark,
        external_task_id=env.external_task_id,
        callback_url=env.callback_url,
        upstream_body=out,
    )
