"""Per-model capability tables for the task kinds, written and overridden as plain data.

Each kind declares its row fields once (a parser, a dumper and the conservative default for each),
so a default table, an operator's override and a dump all share one format, and every value is
type-checked when the gateway starts rather than trusted while traffic is validated. This mirrors
``domain/models.py`` for text2video; the kinds need more field types (feature gates, counts,
name sets), hence a schema rather than one hand-written row class.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from kling_gateway.domain.models import KLING_MODES, sorted_modes
from kling_gateway.errors import ConfigError

ANY_MODEL = "*"  # the one row of a kind that takes no model_name


@dataclass(frozen=True, slots=True)
class Gate:
    """Where an optional feature works; None means in every mode, or at every duration."""

    modes: frozenset[str] | None = None
    durations: frozenset[int] | None = None

    def allows(self, mode: str | None, duration: int | None) -> bool:
        mode_ok = self.modes is None or mode in self.modes
        return mode_ok and (self.durations is None or duration in self.durations)

    def describe(self) -> str:
        """The gate as a message fragment: "mode pro, duration 5 or 10"."""
        parts = []
        if self.modes is not None:
            parts.append("mode " + " or ".join(sorted_modes(self.modes)))
        if self.durations is not None:
            parts.append("duration " + " or ".join(str(d) for d in sorted(self.durations)))
        return ", ".join(parts) or "any mode"


class Row(Protocol):
    @property
    def name(self) -> str: ...


R = TypeVar("R", bound=Row)


@dataclass(frozen=True, slots=True)
class Field:
    parse: Callable[[str, str, object], Any]  # (model, field, value) → the row's value
    dump: Callable[[Any], object]
    default: object  # in data form; the conservative choice for a model the operator adds


def _fail(model: str, key: str, rule: str, value: object) -> ConfigError:
    return ConfigError(f"model {model!r}: {key} {rule}, got {value!r}")


def _list(model: str, key: str, value: object) -> list[object]:
    # A bare string is iterable too; "std" must not quietly become {"s", "t", "d"}.
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple | set | frozenset):
        raise _fail(model, key, "must be a list", value)
    return list(value)


def _parse_flag(model: str, key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise _fail(model, key, "must be true or false", value)
    return value


def _parse_count(model: str, key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(model, key, "must be a whole number >= 0", value)
    return value


def _parse_opt_count(model: str, key: str, value: object) -> int | None:
    return None if value is None else _parse_count(model, key, value)


def _parse_modes(model: str, key: str, value: object) -> frozenset[str] | None:
    if value is None:
        return None
    items = _list(model, key, value)
    if not items or any(item not in KLING_MODES for item in items):
        raise _fail(model, key, f"must be a non-empty list of {', '.join(KLING_MODES)}", value)
    return frozenset(str(item) for item in items)


def _parse_durations(model: str, key: str, value: object) -> frozenset[int] | None:
    if value is None:
        return None
    items = _list(model, key, value)
    if not items or any(isinstance(i, bool) or not isinstance(i, int) or i < 1 for i in items):
        raise _fail(model, key, "must be a non-empty list of whole seconds >= 1", value)
    return frozenset(item for item in items if isinstance(item, int))


def _parse_names(model: str, key: str, value: object) -> frozenset[str]:
    items = _list(model, key, value)
    if any(not isinstance(item, str) or not item.strip() for item in items):
        raise _fail(model, key, "must be a list of non-empty strings", value)
    return frozenset(item for item in items if isinstance(item, str))


def _parse_gate(model: str, key: str, value: object) -> Gate | None:
    if value is False:
        return None
    if value is True:
        return Gate()
    if not isinstance(value, Mapping) or set(value) - {"modes", "durations"}:
        raise _fail(
            model, key, 'must be true, false or {"modes": [...], "durations": [...]}', value
        )
    modes = _parse_modes(model, f"{key}.modes", value.get("modes"))
    durations = _parse_durations(model, f"{key}.durations", value.get("durations"))
    return Gate(modes, durations)


def _dump_modes(value: frozenset[str] | None) -> object:
    return None if value is None else sorted_modes(value)


def _dump_ints(value: frozenset[int] | None) -> object:
    return None if value is None else sorted(value)


def _dump_gate(value: Gate | None) -> object:
    if value is None or value == Gate():
        return value is not None
    out: dict[str, object] = {}
    if value.modes is not None:
        out["modes"] = sorted_modes(value.modes)
    if value.durations is not None:
        out["durations"] = sorted(value.durations)
    return out


def _same(value: object) -> object:
    return value


def flag(default: bool = False) -> Field:
    return Field(_parse_flag, _same, default)


def count(default: int = 0) -> Field:
    return Field(_parse_count, _same, default)


def opt_count(default: int | None = None) -> Field:
    """A limit that may be absent (None: no limit known, Kling decides)."""
    return Field(_parse_opt_count, _same, default)


def modes(default: list[str] | None = None) -> Field:
    """A mode set; None: Kling offers no mode choice for this model."""
    return Field(_parse_modes, _dump_modes, ["std"] if default is None else default)


def durations(default: list[int] | None = None) -> Field:
    return Field(_parse_durations, _dump_ints, [5] if default is None else default)


def opt_durations() -> Field:
    """A duration set that may be absent (None: no separate rule, the main list applies)."""
    return Field(_parse_durations, _dump_ints, None)


def names(default: list[str] | None = None) -> Field:
    return Field(_parse_names, lambda value: sorted(value), default or [])


def gate(default: bool = False) -> Field:
    """An optional feature: false (off), true (everywhere), or the modes/durations it needs."""
    return Field(_parse_gate, _dump_gate, default)


class KindTable(Mapping[str, R], Generic[R]):
    """Immutable model → row map for one kind; an override builds a new table, so a reload can
    swap it atomically."""

    __slots__ = ("_build", "_rows", "_schema", "kind")

    def __init__(
        self,
        kind: str,
        build: Callable[..., R],
        schema: Mapping[str, Field],
        data: Mapping[str, Mapping[str, object]],
    ) -> None:
        self.kind = kind
        self._build = build
        self._schema = schema
        self._rows = {name: self._row(name, fields) for name, fields in data.items()}

    def _row(self, name: object, data: object) -> R:
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{self.kind}: model name must be a non-empty string, got {name!r}")
        if not isinstance(data, Mapping):
            raise ConfigError(f"{self.kind}: model {name!r} must map fields to values")
        unknown = sorted(str(key) for key in data if key not in self._schema)
        if unknown:
            raise ConfigError(
                f"{self.kind}: model {name!r}: unknown capability field(s) {', '.join(unknown)} "
                f"(known: {', '.join(sorted(self._schema))})"
            )
        values = {
            key: spec.parse(name, key, data.get(key, spec.default))
            for key, spec in self._schema.items()
        }
        return self._build(name=name, **values)

    def __getitem__(self, name: str) -> R:
        return self._rows[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def names(self) -> list[str]:
        return list(self._rows)

    def to_dict(self) -> dict[str, dict[str, object]]:
        """JSON-ready, and loads back unchanged: operators dump, edit and reload it."""
        return {
            name: {key: spec.dump(getattr(row, key)) for key, spec in self._schema.items()}
            for name, row in self._rows.items()
        }

    def with_overrides(
        self, overrides: Mapping[str, Mapping[str, object]], source: str = "KGW_MODELS_FILE"
    ) -> KindTable[R]:
        """Fields given for a known model replace just those; a new name adds a model whose
        missing fields take the conservative defaults. A refusal names ``source``."""
        if not isinstance(overrides, Mapping):
            raise ConfigError(f"{source}: {self.kind} overrides must map model names to fields")
        data: dict[str, Mapping[str, object]] = dict(self.to_dict())
        for name, fields in overrides.items():
            if not isinstance(fields, Mapping):
                raise ConfigError(f"{source}: {self.kind}: model {name!r} must map fields")
            data[name] = {**data.get(name, {}), **fields}
        try:
            return KindTable(self.kind, self._build, self._schema, data)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
