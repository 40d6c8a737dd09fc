"""image2video motion brush: ``static_mask`` and ``dynamic_masks`` (kling-video-family.md §2.1).

Kling accepts mismatched masks and then fails the task (status ``failed``, not a 1201), after the
client has waited and the gateway has reserved money. When the image and the masks are base64 the
gateway can see the mismatch itself, so it refuses it up front; URLs it cannot read, so there Kling
keeps the last word.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kling_gateway.domain._checks import fail, is_number, show
from kling_gateway.domain.kinds.common import array, item
from kling_gateway.domain.kinds.images import ImageInput, ImageRule, check_image

MAX_GROUPS = 6
MIN_POINTS = 2
MAX_POINTS_5S = 77  # Kling gives this bound for a 5 s video only; none is stated for 10 s
# Kling states no side or aspect limit for a mask: it must match the image instead.
MASK = ImageRule(min_side=1, aspect=None)


@dataclass(frozen=True, slots=True)
class Masks:
    present: bool
    groups: int


def check_masks(body: dict[str, Any], image: ImageInput | None, seconds: int) -> Masks:
    """Validate the masks and return whether any was given; the gate is the caller's."""
    raw_static = body.get("static_mask")
    raw_groups = body.get("dynamic_masks")
    groups = array("dynamic_masks", raw_groups, MAX_GROUPS, "mask groups")
    if raw_static is None and not groups:
        return Masks(present=False, groups=0)
    if image is None:
        fail("static_mask" if raw_static is not None else "dynamic_masks", "needs an image")
    read: list[tuple[str, ImageInput]] = []
    if raw_static is not None:
        read.append(("static_mask", check_image("static_mask", raw_static, MASK)))
    for pos, group in enumerate(groups):
        where = f"dynamic_masks[{pos}]"
        group = item(where, group, "a mask and its trajectories")
        read.append((f"{where}.mask", check_image(f"{where}.mask", group.get("mask"), MASK)))
        _check_trajectory(where, group.get("trajectories"), seconds)
    _check_match(image, read)
    return Masks(present=True, groups=len(groups))


def _check_trajectory(where: str, raw: object, seconds: int) -> None:
    field = f"{where}.trajectories"
    if raw is None:
        fail(field, "required")
    most = MAX_POINTS_5S if seconds == 5 else 10_000
    points = array(field, raw, most, "points")
    if len(points) < MIN_POINTS:
        fail(field, f"must hold at least {MIN_POINTS} points (got {len(points)})")
    for pos, point in enumerate(points):
        point = item(f"{field}[{pos}]", point, "x and y")
        for axis in ("x", "y"):
            value = point.get(axis)
            if not is_number(value) or not isinstance(value, int) or value < 0:
                fail(
                    f"{field}[{pos}].{axis}",
                    f"must be a whole number of pixels >= 0 (got {show(value)})",
                )


def _check_match(image: ImageInput, masks: list[tuple[str, ImageInput]]) -> None:
    """Same aspect as the image, same resolution as each other: checked where both are known."""
    sized = [(field, m.width, m.height) for field, m in masks if m.width and m.height]
    if image.width and image.height:
        for field, width, height in sized:
            if width * image.height != height * image.width:
                fail(
                    field,
                    f"must have the image's aspect ratio (mask {width}x{height}, "
                    f"image {image.width}x{image.height})",
                )
    for field, width, height in sized[1:]:
        first_field, first_width, first_height = sized[0]
        if (width, height) != (first_width, first_height):
            fail(
                field,
                f"must have the same resolution as {first_field} "
                f"({width}x{height} vs {first_width}x{first_height})",
            )
