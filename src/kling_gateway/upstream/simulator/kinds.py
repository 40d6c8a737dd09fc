"""The task kinds beyond text2video (kling-video-family.md): their specs, their task objects and
their body checks.

text2video keeps its own checks, re-derived from the reference (validation.py), as a cross-check
of the gateway on its hot path. The other kinds run the domain's validators through the registry:
nine kinds' rules written twice would drift apart faster than they would catch anything, and the
simulator then refuses exactly what the gateway's checks refuse, with the same Kling codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kling_gateway.domain.kinds.common import Context, KindRequest
from kling_gateway.domain.kinds.registry import Kind
from kling_gateway.domain.kinds.table import ANY_MODEL
from kling_gateway.errors import KlingError

from .envelope import SimFailure
from .mp4 import mp4_lasting
from .store import SUCCEED, Task
from .validation import SOUND_MULTIPLIER, UNITS_PER_SECOND, CreateSpec

# Kling renders a little over the seconds asked for ("5.1" for "5"), as text2video reports.
OVERRUN_MILLIS = 100


@dataclass(slots=True, frozen=True)
class KindSpec(CreateSpec):
    """A created task of another kind. ``model`` is the kind's name when it has no model, which
    keeps its concurrency count apart; ``duration`` is the output rounded to whole seconds."""

    kind: str
    millis: int  # the output's length, a multiple of 100 ms so its one-decimal text is exact
    price: str
    parent: dict[str, Any] | None = None  # task_info.parent_video (extend, lip-sync)

    @property
    def units(self) -> str:
        return self.price


class KindTask(Task):
    """A task of another kind: text2video's object plus that kind's extras (§8)."""

    __slots__ = ()

    def wire(self) -> dict[str, Any]:
        view = super().wire()
        spec = self.spec
        assert isinstance(spec, KindSpec)
        if self.status == SUCCEED:
            view["task_result"]["videos"][0]["duration"] = duration_text(spec.millis)
        if spec.parent is not None:
            view["task_info"] = {"parent_video": spec.parent, **view["task_info"]}
        return view

    def mp4(self) -> bytes:
        spec = self.spec
        assert isinstance(spec, KindSpec)
        return mp4_lasting(spec.millis)


def check_body(kind: Kind[Any], body: object) -> KindRequest:
    """The kind's domain validator, its refusals turned into the simulator's failures (1200 for a
    body that is not an object, 1201 for a bad field)."""
    try:
        row = kind.model_of(body)
        caps = kind.table.get(row)
        if caps is None:
            raise SimFailure(1201, f"model_name value '{row}' is invalid")
        upstream = None if row == ANY_MODEL else row
        return kind.validate(body, Context(caps, upstream_model=upstream))
    except KlingError as exc:
        raise SimFailure(exc.code, exc.message) from None


def make_spec(request: KindRequest, millis: int, parent: dict[str, Any] | None = None) -> KindSpec:
    seconds = request.duration if request.duration is not None else round(millis / 1000)
    mode = request.mode or "std"
    rate = UNITS_PER_SECOND.get(mode, UNITS_PER_SECOND["std"])
    amount = rate * seconds * (SOUND_MULTIPLIER if request.sound else 1.0)
    return KindSpec(
        model=request.model_name or request.kind,
        mode=mode,
        duration=max(1, round(millis / 1000)),
        sound=request.sound,
        watermark=request.watermark,
        external_task_id=request.external_task_id,
        callback_url=request.callback_url,
        kind=request.kind,
        millis=millis,
        price=format(round(amount, 3), "g"),
        parent=parent,
    )


def round_millis(seconds: float) -> int:
    """Seconds as whole tenths in milliseconds, at least one tenth."""
    return max(100, round(seconds * 10) * 100)


def requested_millis(seconds: int) -> int:
    return seconds * 1000 + OVERRUN_MILLIS


def duration_text(millis: int) -> str:
    """Kling's one-decimal seconds string ("5.1") for a multiple of 100 ms."""
    return f"{millis // 1000}.{millis % 1000 // 100}"


def output_millis(task: Task) -> int:
    """How long a finished task's video is, whatever its kind."""
    spec = task.spec
    if isinstance(spec, KindSpec):
        return spec.millis
    return requested_millis(spec.duration)


def parent_view(task: Task) -> dict[str, Any]:
    """A finished task's video as ``task_info.parent_video`` shows it."""
    return {
        "id": task.video_id,
        "url": f"{task.base_url}/results/{task.video_id}.mp4",
        "duration": duration_text(output_millis(task)),
    }
