"""Hypothesis strategies for create bodies, shared by the validator property test and the HTTP fuzz.

Bodies come three ways: arbitrary JSON (shape attacks: wrong types, nesting, odd keys), "nearly
valid" objects built from the known fields with plausible values mixed with arbitrary ones, and
"valid-leaning" bodies a model's capabilities allow with at most one field replaced, so a good share
of examples gets past the early checks and exercises the deep rules (multi-shot, voices, camera) and
the create path.
"""

from __future__ import annotations

import string
from typing import Any

from hypothesis import strategies as st

from kling_gateway.domain.models import DEFAULT_CAPABILITIES
from kling_gateway.domain.request import KNOWN_FIELDS

MODELS = DEFAULT_CAPABILITIES.names()

# What orjson.loads can hand the validator: no NaN/inf, integers within 64 bits.
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def maybe(plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a plausible value, sometimes anything at all."""
    return st.one_of(plausible, plausible, plausible, json_values)


seconds = st.sampled_from(["3", "4", "5", "6", "10", "15", "0", "05", "5.0", " 5"]) | st.integers(
    -2, 20
)
prompts = st.text(max_size=30) | st.sampled_from(["a fox <<<voice_1>>> sings", "  ", "x" * 2501])
shot = st.fixed_dictionaries(
    {"index": maybe(st.integers(0, 7)), "prompt": maybe(prompts), "duration": maybe(seconds)}
)
camera = st.fixed_dictionaries(
    {},
    optional={
        "type": maybe(st.sampled_from(["simple", "down_back", "forward_up", "right_turn_forward"])),
        "config": maybe(
            st.dictionaries(
                st.sampled_from(["horizontal", "vertical", "pan", "tilt", "roll", "zoom"]),
                maybe(st.integers(-11, 11) | st.floats(-10.5, 10.5)),
                max_size=3,
            )
        ),
    },
)
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "model_name": st.sampled_from(MODELS) | st.text(max_size=12),
    "model": st.sampled_from(MODELS),
    "prompt": prompts,
    "negative_prompt": prompts,
    "cfg_scale": st.floats(-0.5, 1.5) | st.integers(0, 1),
    "mode": st.sampled_from(["std", "pro", "4k", "STD", ""]),
    "camera_control": camera,
    "aspect_ratio": st.sampled_from(["16:9", "9:16", "1:1", "4:3"]),
    "duration": seconds,
    "sound": st.sampled_from(["on", "off", "ON"]),
    "multi_shot": st.booleans(),
    "shot_type": st.sampled_from(["customize", "intelligence", "auto"]),
    "multi_prompt": st.lists(shot, max_size=7),
    "voice_list": st.lists(
        st.fixed_dictionaries({"voice_id": maybe(st.text(string.ascii_lowercase, max_size=6))}),
        max_size=3,
    ),
    "watermark_info": st.fixed_dictionaries({}, optional={"enabled": maybe(st.booleans())}),
    "callback_url": st.sampled_from(["https://hooks.example/cb", "ftp://x", "", "http://[::1"])
    | st.text(max_size=10),
    "external_task_id": st.text(max_size=70),
}
assert (
    set(FIELD_VALUES) == KNOWN_FIELDS
)  # a new field in the validator should get a plausible strategy here

nearly_valid = st.fixed_dictionaries(
    {"prompt": maybe(prompts)},
    optional={name: maybe(values) for name, values in FIELD_VALUES.items() if name != "prompt"},
).flatmap(
    lambda body: st.dictionaries(st.text(max_size=6), json_values, max_size=2).map(
        lambda x: {**x, **body}
    )
)


@st.composite
def valid_leaning(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A body the model's capabilities allow, then at most one field replaced by anything: most are
    accepted, and each refusal is about a single, known field."""
    model = draw(st.sampled_from(MODELS))
    caps = DEFAULT_CAPABILITIES[model]
    body: dict[str, Any] = {
        "model_name": model,
        "prompt": draw(st.text(min_size=1, max_size=30).filter(str.strip)),
    }
    if caps.modes is not None and draw(st.booleans()):
        body["mode"] = draw(st.sampled_from(sorted(caps.modes)))
    if draw(st.booleans()):
        duration = draw(st.sampled_from(sorted(caps.durations)))
        body["duration"] = draw(st.sampled_from([str(duration), duration]))
    if caps.sound and caps.modes is not None and "pro" in caps.modes and draw(st.booleans()):
        body.update(mode="pro", sound="on")
    if caps.cfg_scale and draw(st.booleans()):
        body["cfg_scale"] = draw(st.floats(0, 1))
    for name in (
        "aspect_ratio",
        "watermark_info",
        "callback_url",
        "external_task_id",
        "negative_prompt",
    ):
        if draw(st.booleans()):
            body[name] = draw(FIELD_VALUES[name])
    if draw(st.integers(0, 3)) == 0:
        body[draw(st.sampled_from(sorted(KNOWN_FIELDS)))] = draw(json_values)
    return model, body


bodies = st.one_of(
    valid_leaning(),
    valid_leaning(),
    st.tuples(st.sampled_from(MODELS), nearly_valid),
    st.tuples(st.sampled_from(MODELS), json_values),
)
