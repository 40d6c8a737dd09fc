"""``POST /v1/videos/effects``: a named scene applied to one image, or two for dual scenes (§7.2).

Kling adds and retires scenes every few weeks and its docs disagree on ``input.duration`` (§11.5),
so the scene lists and the duration rule are the table's, not the code's. ``input`` keys the
gateway does not know are forwarded unchanged: fields vary by scene.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kling_gateway.domain._checks import fail, parse_seconds, show
from kling_gateway.domain.kinds import common as c
from kling_gateway.domain.kinds.images import FIRST_FRAME, check_image
from kling_gateway.domain.kinds.table import ANY_MODEL, KindTable, durations, flag, names

KIND = "effects"
MAX_SCENE = 64
DUAL_IMAGES = 2
KNOWN_FIELDS = frozenset({"effect_scene", "input", *c.ENVELOPE_FIELDS})


@dataclass(frozen=True, slots=True)
class EffectsCaps:
    name: str
    scenes: frozenset[str]  # empty: any scene name is forwarded for Kling to judge
    dual_scenes: frozenset[str]  # scenes that take input.images (two) instead of input.image
    retired_scenes: frozenset[str]
    duration_required: bool  # Dec-2025 docs require input.duration; 2026 docs drop it
    durations: frozenset[int]
    dual_durations: frozenset[int]


SCHEMA = {
    "scenes": names(),
    "dual_scenes": names(),
    "retired_scenes": names(),
    "duration_required": flag(),
    "durations": durations([5, 10]),
    "dual_durations": durations([5]),
}
# Dual scenes: the official 2026 example's six plus S5's further names (medium); retired: Kling's
# update log (high).
DEFAULT_TABLE = KindTable(
    KIND,
    EffectsCaps,
    SCHEMA,
    {
        ANY_MODEL: {
            "dual_scenes": [
                "snow_night_kiss",
                "eternal_kiss",
                "cheers_2026",
                "fight_pro",
                "hug_pro",
                "heart_gesture_pro",
                "kiss_pro",
                "pet_skateboard",
                "daily_ootd",
            ],
            "retired_scenes": [
                "celebration",
                "c4d_cartoon",
                "kiss",
                "fight",
                "hug",
                "thumbs_up",
                "tiger_hug",
                "pet_lion",
                "3d_cartoon_1",
                "magic_match_tree",
            ],
        }
    },
)


def validate_effects(body: Any, ctx: c.Context[EffectsCaps]) -> c.KindRequest:
    out = c.start(body, KNOWN_FIELDS, ctx, has_model=False)
    caps = ctx.caps
    scene = c.required_text(body, "effect_scene", MAX_SCENE)
    if scene in caps.retired_scenes:
        fail("effect_scene", f"{show(scene)} has been retired by Kling")
    if caps.scenes and scene not in caps.scenes:
        fail("effect_scene", f"{show(scene)} is not a known scene")
    raw = body.get("input")
    if raw is None:
        fail("input", "required")
    data = c.item("input", raw, "the scene's fields")
    dual = scene in caps.dual_scenes
    if dual:
        images = data.get("images")
        if not isinstance(images, list) or len(images) != DUAL_IMAGES:
            got = f"{len(images)} items" if isinstance(images, list) else show(images)
            fail("input.images", f"must hold exactly 2 images for scene {scene} (got {got})")
        for pos, image in enumerate(images):
            check_image(f"input.images[{pos}]", image, FIRST_FRAME)
    else:
        if data.get("image") is None:
            fail("input.image", f"required for scene {scene}")
        check_image("input.image", data["image"], FIRST_FRAME)
    seconds = _duration(data, caps, scene, dual)
    env = c.envelope(body, ctx)
    return c.KindRequest(
        kind=KIND,
        model_name=None,
        mode=None,
        duration=seconds,  # None when not given: Kling's default, known from the result
        watermark=env.watermark,
        external_task_id=env.external_task_id,
        callback_url=env.callback_url,
        upstream_body=out,
    )


def _duration(data: dict[str, Any], caps: EffectsCaps, scene: str, dual: bool) -> int | None:
    raw = data.get("duration")
    if raw is None:
        if caps.duration_required:
            fail("input.duration", "required")
        return None
    seconds = parse_seconds(raw, "input.duration")
    allowed = caps.dual_durations if dual else caps.durations
    if seconds not in allowed:
        choices = ", ".join(str(d) for d in sorted(allowed))
        fail("input.duration", f"'{seconds}' is not allowed for scene {scene} (allowed: {choices})")
    return seconds
