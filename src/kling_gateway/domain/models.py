"""What each Kling text2video model accepts, as data rather than branches.

Kling answers 1201 for a body its model cannot serve, but only after the gateway has spent a round
trip (and, for some mistakes, money). Keeping the per-model rules (kling-api.md §3.3) in one table
lets the validator reject early, and lets an operator correct the table from configuration when
Kling changes a model — sources already disagree on voice control and 4K — without a code release.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from kling_gateway.errors import ConfigError

DEFAULT_MODEL = "kling-v1"  # what Kling uses when model_name is absent

# Kling's mode values, in the order of cost (kling-api.md §3.3, §3.4). A table may list only these:
# a typo'd or invented mode would be forwarded to Kling, refused there with 1201 after a round trip.
KLING_MODES = ("std", "pro", "4k")
_MODE_ORDER = {mode: rank for rank, mode in enumerate(KLING_MODES)}

_BOOL_FIELDS = (
    "sound",
    "sound_requires_pro",
    "multi_shot",
    "cfg_scale",
    "camera_control",
    "voice_control",
)
_FIELDS = frozenset({"modes", "durations", "camera_modes", "camera_durations", *_BOOL_FIELDS})

# A model the operator adds without saying what it can do gets Kling's plain defaults only
# (std, 5 s, nothing optional): a wrong "yes" would forward bodies Kling rejects or bills
# differently.
_CONSERVATIVE: dict[str, object] = {
    "modes": ["std"],
    "durations": [5],
    "sound": False,
    "sound_requires_pro": False,
    "multi_shot": False,
    "cfg_scale": False,
    "camera_control": False,
    "camera_modes": None,
    "camera_durations": None,
    "voice_control": False,
}


def sorted_modes(modes: Iterable[str]) -> list[str]:
    """std, pro, 4k (the order of cost); anything else after them, alphabetically."""
    return sorted(modes, key=lambda m: (_MODE_ORDER.get(m, len(_MODE_ORDER)), m))


@dataclass(frozen=True, slots=True)
class ModelCapabilities:
    """One model's row of the table; see kling-api.md §3.3 for where each default comes from."""

    name: str
    modes: frozenset[str] | None  # None: Kling offers no mode choice, so a std/pro value is dropped
    durations: frozenset[int]
    sound: bool
    sound_requires_pro: bool
    multi_shot: bool
    cfg_scale: bool
    camera_control: bool
    camera_modes: frozenset[str] | None  # None: camera control works in every mode
    camera_durations: frozenset[int] | None  # None: camera control works at every duration
    voice_control: bool

    def to_dict(self) -> dict[str, object]:
        """JSON-ready and round-trips through ``from_dict``, so operators can dump,
        edit and reload it."""
        return {
            "modes": None if self.modes is None else sorted_modes(self.modes),
            "durations": sorted(self.durations),
            "sound": self.sound,
            "sound_requires_pro": self.sound_requires_pro,
            "multi_shot": self.multi_shot,
            "cfg_scale": self.cfg_scale,
            "camera_control": self.camera_control,
            "camera_modes": None if self.camera_modes is None else sorted_modes(self.camera_modes),
            "camera_durations": None
            if self.camera_durations is None
            else sorted(self.camera_durations),
            "voice_control": self.voice_control,
        }

    @classmethod
    def from_dict(cls, name: object, data: object) -> ModelCapabilities:
        """Build from operator data; missing fields take the conservative defaults.

        Everything is type-checked here (not trusted) because the data comes from a
        config file, and a typo'd key or a ``"true"`` string must stop the gateway at
        start-up, not mis-validate traffic.
        """
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"model name must be a non-empty string, got {name!r}")
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"model {name!r}: capabilities must be a mapping, got {type(data).__name__}"
            )
        fields = dict(data)
        # A "name" inside the entry is tolerated so a dump that carries its own name
        # reloads unchanged.
        if "name" in fields and fields.pop("name") != name:
            raise ConfigError(f"model {name!r}: 'name' inside the entry does not match its key")
        unknown = sorted(str(k) for k in fields if k not in _FIELDS)
        if unknown:
            raise ConfigError(
                f"model {name!r}: unknown capability field(s) {', '.join(unknown)} "
                f"(known: {', '.join(sorted(_FIELDS))})"
            )
        merged = {**_CONSERVATIVE, **fields}
        flags = {key: _bool(name, key, merged[key]) for key in _BOOL_FIELDS}
        caps = cls(
            name=name,
            modes=_opt_mode_set(name, "modes", merged["modes"]),
            durations=_int_set(name, "durations", merged["durations"]),
            sound=flags["sound"],
            sound_requires_pro=flags["sound_requires_pro"],
            multi_shot=flags["multi_shot"],
            cfg_scale=flags["cfg_scale"],
            camera_control=flags["camera_control"],
            camera_modes=_opt_mode_set(name, "camera_modes", merged["camera_modes"]),
            camera_durations=(
                None
                if merged["camera_durations"] is None
                else _int_set(name, "camera_durations", merged["camera_durations"])
            ),
            voice_control=flags["voice_control"],
        )
        if (
            caps.sound
            and caps.sound_requires_pro
            and (caps.modes is None or "pro" not in caps.modes)
        ):
            raise ConfigError(
                f"model {name!r}: sound_requires_pro is set but 'pro' is not among its modes, "
                "so sound could never be turned on"
            )
        return caps


def _bool(name: str, key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"model {name!r}: {key} must be true or false, got {value!r}")
    return value


def _items(name: str, key: str, value: object, what: str) -> list[object]:
    # A bare string is iterable too; "std" must not quietly become {"s", "t", "d"}.
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple | set | frozenset):
        raise ConfigError(f"model {name!r}: {key} must be a list of {what}, got {value!r}")
    if not value:
        raise ConfigError(f"model {name!r}: {key} must not be empty")
    return list(value)


def _opt_mode_set(name: str, key: str, value: object) -> frozenset[str] | None:
    if value is None:
        return None
    out: set[str] = set()
    for item in _items(name, key, value, "non-empty strings (or null)"):
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(
                f"model {name!r}: {key} entries must be non-empty strings, got {item!r}"
            )
        if item not in KLING_MODES:
            raise ConfigError(
                f"model {name!r}: {key} entry {item!r} is not a Kling mode "
                f"(known: {', '.join(KLING_MODES)})"
            )
        out.add(item)
    return frozenset(out)


def _int_set(name: str, key: str, value: object) -> frozenset[int]:
    out: set[int] = set()
    for item in _items(name, key, value, "whole seconds"):
        if isinstance(item, bool) or not isinstance(item, int) or item < 1:
            raise ConfigError(
                f"model {name!r}: {key} entries must be whole seconds >= 1, got {item!r}"
            )
        out.add(item)
    return frozenset(out)


class CapabilityTable(Mapping[str, ModelCapabilities]):
    """Immutable name → capabilities map; changes produce a new table so a reload can
    swap it atomically."""

    __slots__ = ("_models",)

    def __init__(self, models: Iterable[ModelCapabilities] = ()) -> None:
        table: dict[str, ModelCapabilities] = {}
        for caps in models:
            if caps.name in table:
                raise ConfigError(f"model {caps.name!r} appears twice in the capability table")
            table[caps.name] = caps
        self._models = table

    def __getitem__(self, name: str) -> ModelCapabilities:
        return self._models[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._models)

    def __len__(self) -> int:
        return len(self._models)

    def __contains__(self, name: object) -> bool:
        return name in self._models

    def __repr__(self) -> str:
        return f"CapabilityTable({', '.join(self._models)})"

    def get(self, name: str, default: ModelCapabilities | None = None) -> ModelCapabilities | None:  # type: ignore[override]
        return self._models.get(name, default)

    def names(self) -> list[str]:
        """In table order (Kling's documentation order for the defaults), so listings are stable."""
        return list(self._models)

    def with_overrides(
        self, overrides: Mapping[str, Mapping[str, object]], source: str = "KGW_MODELS_FILE"
    ) -> CapabilityTable:
        """Apply operator data: fields given for a known model replace just those
        fields; an unknown name adds a model, its missing fields taking the
        conservative defaults. Every refusal is one line starting with ``source``
        (the setting the data came from), so the operator knows what to fix."""
        try:
            return self._with_overrides(overrides)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    def _with_overrides(self, overrides: Mapping[str, Mapping[str, object]]) -> CapabilityTable:
        if not isinstance(overrides, Mapping):
            raise ConfigError(
                "capability overrides must map model names to fields, "
                f"got {type(overrides).__name__}"
            )
        table = dict(self._models)
        for name, fields in overrides.items():
            if not isinstance(fields, Mapping):
                raise ConfigError(
                    f"capability override for {name!r} must be a mapping of fields, got {fields!r}"
                )
            base = table.get(name)
            merged = dict(fields) if base is None else {**base.to_dict(), **fields}
            caps = ModelCapabilities.from_dict(name, merged)
            table[caps.name] = caps
        return CapabilityTable(table.values())

    def to_dict(self) -> dict[str, dict[str, object]]:
        return {name: caps.to_dict() for name, caps in self._models.items()}


def _caps(
    name: str,
    *,
    modes: Iterable[str] | None = ("std", "pro"),
    durations: Iterable[int] = (5, 10),
    sound: bool = False,
    sound_requires_pro: bool = False,
    multi_shot: bool = False,
    cfg_scale: bool = False,
    camera_control: bool = False,
    camera_modes: Iterable[str] | None = None,
    camera_durations: Iterable[int] | None = None,
    voice_control: bool = False,
) -> ModelCapabilities:
    return ModelCapabilities(
        name=name,
        modes=None if modes is None else frozenset(modes),
        durations=frozenset(durations),
        sound=sound,
        sound_requires_pro=sound_requires_pro,
        multi_shot=multi_shot,
        cfg_scale=cfg_scale,
        camera_control=camera_control,
        camera_modes=None if camera_modes is None else frozenset(camera_modes),
        camera_durations=None if camera_durations is None else frozenset(camera_durations),
        voice_control=voice_control,
    )


# kling-api.md §3.3. Camera control: the 2025 capability map lists only kling-v1 std 5 s for
# text-to-video. Voice control: sources disagree (§3.3 note), so it is on where Kling's pricing and
# update log mention it and left for the operator to switch. 4K on kling-v3 is low-confidence
# (§3.4), so it is not offered by default; an override of kling-v3's modes can add "4k".
DEFAULT_CAPABILITIES = CapabilityTable(
    [
        _caps(
            "kling-v1",
            cfg_scale=True,
            camera_control=True,
            camera_modes={"std"},
            camera_durations={5},
        ),
        _caps("kling-v1-6", cfg_scale=True),
        _caps("kling-v2-master", modes=None),
        _caps("kling-v2-1-master", modes=None),
        _caps("kling-v2-5-turbo"),
        _caps("kling-v2-6", sound=True, sound_requires_pro=True, voice_control=True),
        _caps("kling-v3", durations=range(3, 16), sound=True, multi_shot=True, voice_control=True),
    ]
)
