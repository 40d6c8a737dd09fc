"""``multi_shot`` / ``shot_type`` / ``multi_prompt`` and ``voice_list``: the
storyboard and voice rules.

They live apart from request.py because they are the fiddliest part of the body (nested arrays,
sums, cross-references from prompt text into ``voice_list``) and because both decide billing: the
total duration must really be what the shots add up to, and a referenced voice switches Kling to
"with specified voice" pricing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from kling_gateway.domain._checks import (
    fail,
    is_number,
    json_type,
    one_of,
    parse_seconds,
    show,
    text,
)
from kling_gateway.domain.models import ModelCapabilities

SHOT_TYPES = ("customize", "intelligence")
MAX_SHOTS = 6
MAX_SHOT_PROMPT = 512
MAX_VOICES = 2

# Kling's voice reference syntax; digits only, and N is 1-based into voice_list.
_VOICE_REF = re.compile(r"<<<voice_([0-9]+)>>>")
_VOICE_MARK = "<<<voice_"  # cheap substring test before running the regex on every prompt


@dataclass(frozen=True, slots=True)
class MultiShot:
    enabled: bool
    shot_type: str | None
    # prompts of the forwarded shots (voice references can sit in them)
    shot_prompts: tuple[str, ...]


_SINGLE = MultiShot(enabled=False, shot_type=None, shot_prompts=())


def check_multi_shot(
    body: dict[str, Any],
    out: dict[str, Any],
    *,
    caps: ModelCapabilities,
    model_name: str,
    duration: int,
) -> MultiShot:
    """Validate the storyboard fields and rewrite them in ``out`` (the body to forward).

    Fields Kling documents as "invalid" in a given combination are dropped, not forwarded: shot_type
    and multi_prompt when multi_shot is false, multi_prompt for ``intelligence``. Forwarding them
    would risk a 1201 from Kling for something the client was told is ignored.
    """
    raw = body.get("multi_shot")
    if raw is None or raw is False:
        out.pop("shot_type", None)
        out.pop("multi_prompt", None)
        return _SINGLE
    if raw is not True:
        fail("multi_shot", f"must be true or false (got {show(raw)})")
    if not caps.multi_shot:
        fail("multi_shot", f"true is not supported for model {model_name}")

    shot_type_raw = body.get("shot_type")
    if shot_type_raw is None:
        fail("shot_type", "required when multi_shot is true")
    shot_type = one_of("shot_type", shot_type_raw, SHOT_TYPES)
    if shot_type == "intelligence":
        out.pop("multi_prompt", None)
        return MultiShot(enabled=True, shot_type=shot_type, shot_prompts=())

    shots = body.get("multi_prompt")
    if shots is None:
        fail("multi_prompt", "required when multi_shot is true and shot_type is customize")
    if not isinstance(shots, list):
        fail("multi_prompt", f"must be an array of shots (got {show(shots)})")
    if not 1 <= len(shots) <= MAX_SHOTS:
        fail("multi_prompt", f"must hold 1 to {MAX_SHOTS} shots (got {len(shots)})")

    seen: set[int] = set()
    total = 0
    forwarded: list[dict[str, Any]] = []
    prompts: list[str] = []
    for pos, shot in enumerate(shots):
        where = f"multi_prompt[{pos}]"
        if not isinstance(shot, dict):
            fail(where, f"must be an object with index, prompt and duration (got {show(shot)})")
        index = shot.get("index")
        if index is None:
            fail(f"{where}.index", "required")
        if not is_number(index) or not isinstance(index, int):
            fail(f"{where}.index", f"must be an integer (got {show(index)})")
        if index in seen:
            fail(
                f"{where}.index",
                f"{show(index)} is used by an earlier shot; indexes must be unique",
            )
        seen.add(index)

        prompt = shot.get("prompt")
        if prompt is None:
            fail(f"{where}.prompt", "required")
        prompt = text(f"{where}.prompt", prompt, MAX_SHOT_PROMPT)
        if not prompt.strip():
            fail(f"{where}.prompt", "must not be empty")
        prompts.append(prompt)

        raw_seconds = shot.get("duration")
        if raw_seconds is None:
            fail(f"{where}.duration", "required")
        seconds = parse_seconds(raw_seconds, f"{where}.duration")
        if seconds < 1:
            fail(f"{where}.duration", f"must be at least 1 (got {seconds})")
        if seconds > duration:
            fail(
                f"{where}.duration",
                f"must be at most the total duration {duration} (got {seconds})",
            )
        total += seconds

        item = dict(shot)
        item["duration"] = str(seconds)
        forwarded.append(item)

    if total != duration:
        fail("multi_prompt", f"shot durations must add up to duration {duration} (got {total})")
    out["multi_prompt"] = forwarded
    return MultiShot(enabled=True, shot_type=shot_type, shot_prompts=tuple(prompts))


def check_voices(
    body: dict[str, Any], out: dict[str, Any], *, caps: ModelCapabilities, model_name: str
) -> int:
    """Validate ``voice_list`` and return how many voices it holds (0 when absent or empty).

    An empty list is treated like an absent one and not forwarded, so a client that always sends the
    key does not trip the "not supported" rule on models without voice control.
    """
    voices = body.get("voice_list")
    if voices is None:
        return 0
    if not isinstance(voices, list):
        fail("voice_list", f"must be an array of voices (got {show(voices)})")
    if not voices:
        out.pop("voice_list", None)
        return 0
    if not caps.voice_control:
        fail("voice_list", f"not supported for model {model_name}")
    if len(voices) > MAX_VOICES:
        fail("voice_list", f"must hold at most {MAX_VOICES} voices (got {len(voices)})")
    for pos, voice in enumerate(voices):
        if not isinstance(voice, dict):
            fail(
                f"voice_list[{pos}]", f"must be an object with a voice_id (got {json_type(voice)})"
            )
        voice_id = voice.get("voice_id")
        if not isinstance(voice_id, str) or not voice_id.strip():
            fail(
                f"voice_list[{pos}].voice_id", f"must be a non-empty string (got {show(voice_id)})"
            )
    return len(voices)


def check_voice_refs(prompts: list[tuple[str, str]], *, voice_count: int, sound: bool) -> bool:
    """Check every ``<<<voice_N>>>`` in the given (field, prompt) pairs; True if any is present.

    A reference to a voice that is not in ``voice_list`` is refused because Kling
    would either fail the task after accepting it or bill a voiced video that cannot
    have the voice; Kling also requires sound on.
    """
    found = False
    for field, prompt in prompts:
        if _VOICE_MARK not in prompt:
            continue
        for match in _VOICE_REF.finditer(prompt):
            found = True
            digits = match.group(1)
            number = int(digits) if len(digits) <= 3 else MAX_VOICES + 1
            if not 1 <= number <= voice_count:
                fail(
                    field,
                    f"{match.group(0)[:24]} refers to a voice that is not in voice_list "
                    f"(voice_list has {voice_count}; <<<voice_N>>> means voice_list[N-1])",
                )
            if not sound:
                fail("sound", f"must be 'on' when {field} references a voice ({match.group(0)})")
    return found
