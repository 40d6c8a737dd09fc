"""Simulator knobs. A plain mutable dataclass so tests and benchmarks can flip faults mid-run.

Timing fields are read when a task is *created*, so changing them never rewrites the history of
tasks already in flight (a real upstream would not retroactively change either).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

DEFAULT_PUBLIC_BASE_URL = "http://127.0.0.1:8001"


@dataclass
class SimulatorConfig:
    # --- credentials -------------------------------------------------------------------------
    access_keys: dict[str, str] = field(default_factory=lambda: {"sim-ak": "sim-sk"})
    api_keys: set[str] = field(default_factory=set)
    # Credential (AK or API key) -> account name. Unlisted credentials are their own
    # account, so by default every AK/SK pair is a separate account. Map an API key
    # to an AK to make them share one account (Kling: "all keys of an account share"
    # concurrency and the external_task_id namespace).
    account_of: dict[str, str] = field(default_factory=dict)
    # --- task lifecycle ----------------------------------------------------------------------
    submitted_seconds: float = 1.0
    processing_seconds: float = 3.0
    task_failure_rate: float = 0.0
    task_failure_message: str = "Failure to pass the risk control system"
    concurrency_per_model: int = 100
    # --- fault injection ---------------------------------------------------------------------
    create_error_rate: float = 0.0
    create_error_code: int = 5000
    ambiguous_error_rate: float = 0.0
    hang_rate: float = 0.0
    hang_seconds: float = 30.0
    latency_seconds: float = 0.0
    get_error_rate: float = 0.0
    # --- callbacks ---------------------------------------------------------------------------
    webhook_secret: str | None = None
    callback_retries: int = 2
    callback_retry_delay_seconds: float = 0.5
    callback_timeout_seconds: float = 10.0  # read when the owned client is made (lifespan start)
    callback_concurrency: int = 64  # simultaneous deliveries; read at lifespan start
    # --- results / billing -------------------------------------------------------------------
    public_base_url: str = DEFAULT_PUBLIC_BASE_URL
    result_retention_seconds: float = 30 * 24 * 3600.0
    resource_pack_units: float = 100_000.0
    # kling-api.md §3.4: whether kling-v3 accepts mode "4k" is low-confidence, hence a switch.
    allow_4k_mode: bool = True
    # --- other task kinds (kling-video-family.md) ----------------------------------------------
    # The length of a video or audio the simulator did not produce itself (a foreign URL): it
    # never fetches media, so it assumes this.
    unknown_media_seconds: float = 5.0
    extend_seconds: float = 4.5  # what one video-extend adds: "4–5 s" (§5)
    effects_seconds: float = 5.0  # a scene's length when the body names none (§7.2, §11.5)
    # --- misc --------------------------------------------------------------------------------
    seed: int | None = None
    tick_seconds: float = 0.05  # real-time period of the background timer that fires transitions

    def account_for(self, credential: str) -> str:
        return self.account_of.get(credential, credential)


_FLOAT_FIELDS = {f.name for f in dataclasses.fields(SimulatorConfig) if f.type == "float"}
_INT_FIELDS = {f.name for f in dataclasses.fields(SimulatorConfig) if f.type == "int"}
_OPTIONAL_INT_FIELDS = {"seed"}
_STR_FIELDS = {"public_base_url", "task_failure_message"}
_OPTIONAL_STR_FIELDS = {"webhook_secret"}
_BOOL_FIELDS = {"allow_4k_mode"}
_STR_MAP_FIELDS = {"access_keys", "account_of"}
_RATE_FIELDS = {name for name in _FLOAT_FIELDS if name.endswith("_rate")}


def config_to_json(config: SimulatorConfig) -> dict[str, Any]:
    out = dataclasses.asdict(config)
    out["api_keys"] = sorted(config.api_keys)
    return out


def _coerce(name: str, value: Any) -> Any:
    """One place that decides what JSON is acceptable per field, so a typo'd patch fails loudly
    instead of leaving e.g. a string where arithmetic expects a float."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if name in _FLOAT_FIELDS:
        if not is_number or value < 0 or (name in _RATE_FIELDS and value > 1):
            raise ValueError(
                f"{name} must be a non-negative number" + (" ≤ 1" if name in _RATE_FIELDS else "")
            )
        return float(value)
    if name in _INT_FIELDS or name in _OPTIONAL_INT_FIELDS:
        if value is None and name in _OPTIONAL_INT_FIELDS:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer")
        return value
    if name in _STR_FIELDS or name in _OPTIONAL_STR_FIELDS:
        if value is None and name in _OPTIONAL_STR_FIELDS:
            return None
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string")
        return value
    if name in _BOOL_FIELDS:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be a boolean")
        return value
    if name in _STR_MAP_FIELDS:
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ValueError(f"{name} must be an object of strings")
        return dict(value)
    if name == "api_keys":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError("api_keys must be an array of strings")
        return set(value)
    raise ValueError(f"unknown config field {name}")


def apply_patch(config: SimulatorConfig, patch: dict[str, Any]) -> None:
    """Validate the whole patch first and only then assign, so a bad field leaves
    config untouched."""
    coerced = {name: _coerce(name, value) for name, value in patch.items()}
    for name, value in coerced.items():
        setattr(config, name, value)
