"""Every Kling video task kind as data: its path, validator, capability table, price rule and body
cap, so create, tracking, money and mirroring take a kind instead of branching on one.

Adding a kind is a new entry here plus its validator module; nothing else names kinds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Generic, Literal, TypeVar

from kling_gateway.domain.kinds import effects, extend, image2video, lipsync, motion, multi_image
from kling_gateway.domain.kinds import omni as omni_video
from kling_gateway.domain.kinds.common import Context, KindRequest, model_name
from kling_gateway.domain.kinds.images import MAX_IMAGE_BYTES
from kling_gateway.domain.kinds.lipsync import MAX_AUDIO_BYTES
from kling_gateway.domain.kinds.table import ANY_MODEL
from kling_gateway.domain.models import DEFAULT_CAPABILITIES, ModelCapabilities
from kling_gateway.domain.request import extract_model_name, validate_text2video

C = TypeVar("C")

# What the price is multiplied by: the requested seconds (known at create), the output's seconds
# (known when the task ends; a configurable maximum is reserved), or one price per task.
Billing = Literal["requested", "output", "task"]

# Everything in a body besides its media: prompts, shots, lists. text2video's whole budget.
TEXT_ALLOWANCE = 1024 * 1024


def base64_size(raw_bytes: int) -> int:
    """Characters of raw base64 for ``raw_bytes`` bytes (4 per 3, padded)."""
    return -(-raw_bytes // 3) * 4


def body_cap(images: int = 0, audio: int = 0) -> int:
    """The largest valid body: that many base64 media at their limits, plus the text."""
    media = images * base64_size(MAX_IMAGE_BYTES) + audio * base64_size(MAX_AUDIO_BYTES)
    return media + TEXT_ALLOWANCE


@dataclass(frozen=True, slots=True)
class Kind(Generic[C]):
    name: str  # the path segment, also the task's kind in storage and listings
    validate: Callable[[Any, Context[C]], KindRequest]
    table: Mapping[str, C]  # the default capability rows; operators override them by table_key
    # the model the body asks for, which selects the row; ANY_MODEL for kinds without models
    model_of: Callable[[object], str]
    price_key: str  # the kind column of the price rows
    billing: Billing
    max_body_bytes: int
    has_duration: bool  # the body carries a duration the client chooses
    synchronous: bool = False  # answered at once, no task to track (identify-face)
    # the body names a video by the client's id: the caller maps it to the upstream id of one
    # of the same user's tasks, and refuses any other
    maps_video_id: bool = False

    @property
    def path(self) -> str:
        return f"/v1/videos/{self.name}"

    @property
    def table_key(self) -> str:
        """The section of the operator's capability file that overrides this kind's table."""
        return self.name


def _no_model(body: object) -> str:
    return ANY_MODEL


def _model(default: str) -> Callable[[object], str]:
    return lambda body: model_name(body, default)


def validate_text2video_kind(body: Any, ctx: Context[ModelCapabilities]) -> KindRequest:
    """The existing text2video validator, its request seen as a kind's."""
    found = validate_text2video(
        body,
        caps=ctx.caps,
        upstream_model=ctx.upstream_model or ctx.caps.name,
        strict=ctx.strict,
        max_external_id_len=ctx.max_external_id_len,
    )
    return KindRequest(
        kind="text2video",
        model_name=found.model_name,
        mode=found.mode,
        duration=found.duration,
        watermark=found.watermark,
        external_task_id=found.external_task_id,
        callback_url=found.callback_url,
        upstream_body=found.upstream_body,
        sound=found.sound,
        voice_control=found.voice_control,
    )


_ENTRIES: tuple[Kind[Any], ...] = (
    Kind(
        "text2video",
        validate_text2video_kind,
        DEFAULT_CAPABILITIES,
        extract_model_name,
        price_key="text2video",
        billing="requested",
        max_body_bytes=body_cap(),
        has_duration=True,
    ),
    Kind(
        image2video.KIND,
        image2video.validate_image2video,
        image2video.DEFAULT_TABLE,
        _model(image2video.DEFAULT_MODEL),
        price_key=image2video.KIND,
        billing="requested",
        # image + static_mask + 6 dynamic masks (a tail frame excludes masks)
        max_body_bytes=body_cap(images=8),
        has_duration=True,
    ),
    Kind(
        multi_image.KIND,
        multi_image.validate_multi_image,
        multi_image.DEFAULT_TABLE,
        _model(multi_image.DEFAULT_MODEL),
        price_key=multi_image.KIND,
        billing="requested",
        max_body_bytes=body_cap(images=4),
        has_duration=True,
    ),
    Kind(
        omni_video.KIND,
        omni_video.validate_omni,
        omni_video.DEFAULT_TABLE,
        _model(omni_video.DEFAULT_MODEL),
        price_key=omni_video.KIND,
        billing="requested",  # a base-video edit bills the input's length: its duration is None
        max_body_bytes=body_cap(images=7),  # images + elements ≤ 7
        has_duration=True,
    ),
    Kind(
        extend.KIND,
        extend.validate_extend,
        extend.DEFAULT_TABLE,
        _no_model,
        price_key=extend.KIND,
        billing="output",
        max_body_bytes=body_cap(),
        has_duration=False,
        maps_video_id=True,
    ),
    Kind(
        lipsync.IDENTIFY,
        lipsync.validate_identify_face,
        lipsync.DEFAULT_TABLE,
        _no_model,
        price_key=lipsync.IDENTIFY,
        billing="task",
        max_body_bytes=body_cap(),
        has_duration=False,
        synchronous=True,
        maps_video_id=True,
    ),
    Kind(
        lipsync.LIP_SYNC,
        lipsync.validate_lip_sync,
        lipsync.DEFAULT_TABLE,
        _no_model,
        price_key=lipsync.LIP_SYNC,
        billing="output",
        max_body_bytes=body_cap(audio=1),  # one face, one sound_file
        has_duration=False,
    ),
    Kind(
        motion.KIND,
        motion.validate_motion,
        motion.DEFAULT_TABLE,
        _model(motion.DEFAULT_MODEL),
        price_key=motion.KIND,
        billing="output",
        max_body_bytes=body_cap(images=1),
        has_duration=False,
    ),
    Kind(
        effects.KIND,
        effects.validate_effects,
        effects.DEFAULT_TABLE,
        _no_model,
        price_key=effects.KIND,
        billing="task",
        max_body_bytes=body_cap(images=2),
        has_duration=False,
    ),
)

KINDS: Mapping[str, Kind[Any]] = MappingProxyType({kind.name: kind for kind in _ENTRIES})
_BY_PATH = {kind.path: kind for kind in _ENTRIES}


def kind_for_path(path: str) -> Kind[Any] | None:
    """The kind a Kling create path (``/v1/videos/<kind>``) names, or None."""
    return _BY_PATH.get(path)
