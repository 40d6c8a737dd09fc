from __future__ import annotations

import json
from typing import Any

import pytest

from kling_gateway.domain.models import (
    DEFAULT_CAPABILITIES,
    DEFAULT_MODEL,
    CapabilityTable,
    ModelCapabilities,
    sorted_modes,
)
from kling_gateway.errors import ConfigError

OFFICIAL = [
    "kling-v1",
    "kling-v1-6",
    "kling-v2-master",
    "kling-v2-1-master",
    "kling-v2-5-turbo",
    "kling-v2-6",
    "kling-v3",
]


def test_default_table_holds_the_official_models_in_doc_order() -> None:
    assert DEFAULT_CAPABILITIES.names() == OFFICIAL
    assert DEFAULT_MODEL == "kling-v1"
    assert DEFAULT_MODEL in DEFAULT_CAPABILITIES
    assert len(DEFAULT_CAPABILITIES) == 7
    assert list(DEFAULT_CAPABILITIES) == OFFICIAL


@pytest.mark.parametrize(
    ("model", "field", "expected"),
    [
        ("kling-v1", "modes", frozenset({"std", "pro"})),
        ("kling-v1", "durations", frozenset({5, 10})),
        ("kling-v1", "cfg_scale", True),
        ("kling-v1", "camera_control", True),
        ("kling-v1", "camera_modes", frozenset({"std"})),
        ("kling-v1", "camera_durations", frozenset({5})),
        ("kling-v1", "sound", False),
        ("kling-v1", "voice_control", False),
        ("kling-v1-6", "cfg_scale", True),
        ("kling-v1-6", "camera_control", False),
        ("kling-v2-master", "modes", None),
        ("kling-v2-master", "cfg_scale", False),
        ("kling-v2-1-master", "modes", None),
        ("kling-v2-5-turbo", "modes", frozenset({"std", "pro"})),
        ("kling-v2-5-turbo", "sound", False),
        ("kling-v2-6", "sound", True),
        ("kling-v2-6", "sound_requires_pro", True),
        ("kling-v2-6", "voice_control", True),
        ("kling-v2-6", "multi_shot", False),
        ("kling-v2-6", "durations", frozenset({5, 10})),
        ("kling-v3", "durations", frozenset(range(3, 16))),
        (
            "kling-v3",
            "modes",
            frozenset({"std", "pro"}),
        ),  # no "4k" by default (§3.4, low confidence)
        ("kling-v3", "sound", True),
        ("kling-v3", "sound_requires_pro", False),
        ("kling-v3", "multi_shot", True),
        ("kling-v3", "voice_control", True),
        ("kling-v3", "cfg_scale", False),
        ("kling-v3", "camera_control", False),
    ],
)
def test_default_capabilities_follow_the_reference_table(
    model: str, field: str, expected: object
) -> None:
    caps = DEFAULT_CAPABILITIES.get(model)
    assert caps is not None
    assert getattr(caps, field) == expected


def test_lookup_of_unknown_model_is_none() -> None:
    assert DEFAULT_CAPABILITIES.get("kling-v9") is None
    assert "kling-v9" not in DEFAULT_CAPABILITIES
    with pytest.raises(KeyError):
        DEFAULT_CAPABILITIES["kling-v9"]


def test_capabilities_are_immutable() -> None:
    caps = DEFAULT_CAPABILITIES["kling-v1"]
    with pytest.raises(AttributeError):
        caps.sound = True  # type: ignore[misc]


@pytest.mark.parametrize("model", OFFICIAL)
def test_to_dict_round_trips_through_from_dict_and_json(model: str) -> None:
    caps = DEFAULT_CAPABILITIES[model]
    data = json.loads(json.dumps(caps.to_dict()))
    assert ModelCapabilities.from_dict(model, data) == caps


def test_to_dict_lists_modes_in_cost_order() -> None:
    table = DEFAULT_CAPABILITIES.with_overrides({"kling-v3": {"modes": ["4k", "pro", "std"]}})
    assert table["kling-v3"].to_dict()["modes"] == ["std", "pro", "4k"]
    assert sorted_modes(["zz", "4k", "pro", "std", "aa"]) == ["std", "pro", "4k", "aa", "zz"]


def test_table_to_dict_covers_every_model() -> None:
    data = DEFAULT_CAPABILITIES.to_dict()
    assert list(data) == OFFICIAL
    assert data["kling-v3"]["durations"] == list(range(3, 16))
    assert data["kling-v2-master"]["modes"] is None


def test_from_dict_accepts_a_matching_name_key() -> None:
    data = {**DEFAULT_CAPABILITIES["kling-v1"].to_dict(), "name": "kling-v1"}
    assert ModelCapabilities.from_dict("kling-v1", data) == DEFAULT_CAPABILITIES["kling-v1"]


def test_from_dict_fills_missing_fields_conservatively() -> None:
    caps = ModelCapabilities.from_dict("acme-1", {})
    assert caps == ModelCapabilities(
        name="acme-1",
        modes=frozenset({"std"}),
        durations=frozenset({5}),
        sound=False,
        sound_requires_pro=False,
        multi_shot=False,
        cfg_scale=False,
        camera_control=False,
        camera_modes=None,
        camera_durations=None,
        voice_control=False,
    )


def test_override_changes_only_the_given_fields_and_leaves_the_original_alone() -> None:
    table = DEFAULT_CAPABILITIES.with_overrides({"kling-v3": {"modes": ["std", "pro", "4k"]}})
    assert table["kling-v3"].modes == frozenset({"std", "pro", "4k"})
    assert table["kling-v3"].durations == frozenset(range(3, 16))
    assert table["kling-v3"].multi_shot is True
    assert DEFAULT_CAPABILITIES["kling-v3"].modes == frozenset({"std", "pro"})
    for name in OFFICIAL[:-1]:
        assert table[name] == DEFAULT_CAPABILITIES[name]


def test_override_can_switch_voice_control_off() -> None:
    table = DEFAULT_CAPABILITIES.with_overrides({"kling-v2-6": {"voice_control": False}})
    assert table["kling-v2-6"].voice_control is False
    assert table["kling-v2-6"].sound_requires_pro is True


def test_override_can_add_a_model_with_conservative_defaults() -> None:
    table = DEFAULT_CAPABILITIES.with_overrides(
        {"kling-v3-turbo": {"durations": [5, 10], "sound": True}}
    )
    assert table.names() == [*OFFICIAL, "kling-v3-turbo"]
    caps = table["kling-v3-turbo"]
    assert caps.durations == frozenset({5, 10})
    assert caps.sound is True
    assert caps.modes == frozenset({"std"})
    assert caps.multi_shot is False
    assert caps.voice_control is False
    assert "kling-v3-turbo" not in DEFAULT_CAPABILITIES


def test_override_can_set_null_camera_limits() -> None:
    table = DEFAULT_CAPABILITIES.with_overrides(
        {"kling-v1": {"camera_modes": None, "camera_durations": None}}
    )
    assert table["kling-v1"].camera_modes is None
    assert table["kling-v1"].camera_durations is None


def test_empty_overrides_give_an_equal_table() -> None:
    assert DEFAULT_CAPABILITIES.with_overrides({}).to_dict() == DEFAULT_CAPABILITIES.to_dict()


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"modes": "std"}, "modes must be a list"),
        ({"modes": []}, "modes must not be empty"),
        ({"modes": [1]}, "modes entries must be non-empty strings"),
        ({"modes": [""]}, "modes entries must be non-empty strings"),
        ({"durations": 5}, "durations must be a list"),
        ({"durations": []}, "durations must not be empty"),
        ({"durations": [0]}, "durations entries must be whole seconds >= 1"),
        ({"durations": [5.0]}, "durations entries must be whole seconds >= 1"),
        ({"durations": [True]}, "durations entries must be whole seconds >= 1"),
        ({"durations": ["5"]}, "durations entries must be whole seconds >= 1"),
        ({"camera_durations": "5"}, "camera_durations must be a list"),
        ({"camera_modes": ["std", None]}, "camera_modes entries must be non-empty strings"),
        ({"modes": ["std", "zz"]}, "modes entry 'zz' is not a Kling mode (known: std, pro, 4k)"),
        ({"modes": ["PRO"]}, "modes entry 'PRO' is not a Kling mode"),
        ({"camera_modes": ["8k"]}, "camera_modes entry '8k' is not a Kling mode"),
        ({"sound": "true"}, "sound must be true or false"),
        ({"voice_control": 1}, "voice_control must be true or false"),
        ({"multi_shot": None}, "multi_shot must be true or false"),
        ({"sounds": True}, "unknown capability field(s) sounds"),
        ({"name": "other"}, "'name' inside the entry does not match"),
        (
            {"sound": True, "sound_requires_pro": True, "modes": ["std"]},
            "sound_requires_pro is set but 'pro' is not among its modes",
        ),
        ({"sound": True, "sound_requires_pro": True, "modes": None}, "sound_requires_pro is set"),
    ],
)
def test_from_dict_rejects_bad_operator_data(data: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        ModelCapabilities.from_dict("acme-1", data)
    assert "model 'acme-1'" in str(info.value)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("name", "data", "fragment"),
    [
        ("", {}, "model name must be a non-empty string"),
        (5, {}, "model name must be a non-empty string"),
        ("acme", ["modes"], "capabilities must be a mapping"),
    ],
)
def test_from_dict_rejects_bad_names_and_shapes(name: object, data: object, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        ModelCapabilities.from_dict(name, data)


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (["kling-v1"], "capability overrides must map model names to fields"),
        ({"kling-v1": True}, "capability override for 'kling-v1' must be a mapping"),
        ({"kling-v1": {"durations": "5"}}, "model 'kling-v1': durations must be a list"),
        ({"kling-v2-6": {"modes": ["std"]}}, "sound_requires_pro is set"),
        ({"": {}}, "model name must be a non-empty string"),
    ],
)
def test_with_overrides_rejects_bad_data(overrides: Any, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        DEFAULT_CAPABILITIES.with_overrides(overrides)


def test_override_refusals_are_one_line_naming_the_setting_and_the_value() -> None:
    with pytest.raises(ConfigError) as info:
        DEFAULT_CAPABILITIES.with_overrides({"kling-v3": {"modes": ["std", "ultra"]}})
    message = str(info.value)
    assert message.startswith("KGW_MODELS_FILE: model 'kling-v3': modes entry 'ultra'")
    assert "\n" not in message
    with pytest.raises(ConfigError, match=r"^elsewhere: capability overrides must map"):
        DEFAULT_CAPABILITIES.with_overrides([], source="elsewhere")  # type: ignore[arg-type]


def test_table_refuses_duplicate_names() -> None:
    caps = DEFAULT_CAPABILITIES["kling-v1"]
    with pytest.raises(ConfigError, match="appears twice"):
        CapabilityTable([caps, caps])
