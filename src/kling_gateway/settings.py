"""One Settings object, built once at start (``Settings()`` reads ``KGW_*`` and an optional
``.env``) and passed down explicitly. Nothing reads the environment at import time, so tests build
``Settings(...)`` by hand.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DATABASE_FILE = "kling-gateway.db"
MASTER_KEY_FILE = "kling-gateway.key"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KGW_", env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    # --- storage
    home: Path = Field(
        Path("."),
        description="Data directory: the default SQLite file and master key file live here "
        "(default: the current directory, so run the CLI where `serve` runs or set KGW_HOME)",
    )
    database_url: str = Field(
        "",  # filled in from home by _home_defaults
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path.db or postgresql+asyncpg://user@host/db",
    )
    # --- secrets at rest
    master_key: SecretStr | None = Field(
        None,
        description="Fernet key (urlsafe base64, 32 bytes) that encrypts stored secret keys and "
        "upstream credentials. When unset, one is generated on first start into master_key_file.",
    )
    master_key_file: Path = Path()  # filled in from home by _home_defaults

    # --- HTTP edge
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    strict_fields: bool = Field(
        False, description="Refuse unknown top-level body fields instead of forwarding them"
    )
    max_external_task_id_len: int = Field(64, ge=1, le=255)
    jwt_leeway_seconds: int = Field(10, ge=0, le=300)
    jwt_max_lifetime_seconds: int = Field(
        86_400, ge=60, description="Longest life a client's JWT may have (exp after nbf or now)"
    )
    key_cache_seconds: float = Field(5.0, ge=0)

    # --- models
    models_file: Path | None = Field(
        None,
        description="JSON file overriding the per-model capability table ({model: {field: value}})",
    )

    # --- upstream (official Kling API); simulator when no credentials are given
    kling_base_url: str = "https://api-singapore.klingai.com"
    kling_access_key: SecretStr | None = None
    kling_secret_key: SecretStr | None = None
    kling_api_key: SecretStr | None = None
    upstream_connect_timeout: float = Field(5.0, gt=0)
    upstream_read_timeout: float = Field(30.0, gt=0)
    upstream_max_connections: int = Field(100, ge=1)
    upstream_transport: Literal["aiohttp", "httpx"] = Field(
        "aiohttp",
        description="HTTP client for upstream calls; aiohttp costs far less CPU per call",
    )
    upstream: Literal["auto", "kling", "simulator"] = Field(
        "auto",
        description="auto = the official API when credentials are set, else the built-in "
        "simulator; kling = the official API through the KGW_KLING_* account and/or accounts "
        "added with `kling-gateway channels add`",
    )
    # --- several upstream accounts (channels)
    channel_cooldown_seconds: float = Field(
        300.0, gt=0, description="an account refusing our credentials or balance sits out this long"
    )
    channel_unreachable_seconds: float = Field(
        15.0,
        gt=0,
        description="an account that could not be reached is only a last resort this long",
    )
    channel_busy_seconds: float = Field(
        2.0,
        ge=0,
        description="after 1302/1303 an account x model is skipped this long (Kling: >= 1 s)",
    )
    channel_probe_seconds: float = Field(
        60.0, ge=0, description="cheap health probe per account (GET /account/costs); 0 = off"
    )
    channel_reload_seconds: float = Field(
        5.0, gt=0, description="how often a process re-reads accounts, cooldowns and routes"
    )
    simulator_port: int = Field(8001, ge=1, le=65535)

    # --- tracking
    refresh_interval_seconds: float = Field(1.0, gt=0)
    refresh_batch: int = Field(200, ge=1)
    first_poll_seconds: float = Field(2.0, ge=0.05)
    max_poll_seconds: float = Field(30.0, gt=0)
    poll_render_scale: float | None = Field(
        None,
        ge=0,
        description="first look at a task after scale × its expected render seconds (at least "
        "first_poll_seconds); default 12 against Kling, 0 against the simulator",
    )
    poll_jitter: float = Field(
        0.1, ge=0, le=1, description="± fraction of each poll delay, spreads load"
    )
    poll_concurrency_per_account: int = Field(
        8, ge=1, description="in-flight upstream reads per account"
    )
    lease_seconds: float = Field(
        30.0, gt=0, description="how long a poller holds a task it is reading"
    )
    task_timeout_seconds: float = Field(
        86_400.0, gt=0, description="a task with no terminal state after this long becomes failed"
    )
    public_base_url: str | None = Field(
        None,
        description=(
            "Where Kling can reach this gateway; enables inbound Kling callbacks and mirror URLs"
        ),
    )
    upstream_webhook_secret: SecretStr | None = Field(
        None,
        description=(
            "Kling console's webhook secret (whsec_…) to verify inbound callback signatures"
        ),
    )

    # --- outbound webhooks to the client's callback_url
    webhook_timeout_seconds: float = Field(10.0, gt=0)
    webhook_max_age_seconds: float = Field(
        86_400.0, gt=0, description="retry a delivery for this long"
    )
    webhook_concurrency: int = Field(16, ge=1)
    outbound_allow: str = Field(
        "",
        description="Comma-separated hosts/CIDRs outbound calls may reach even if private "
        "(e.g. 127.0.0.1,10.0.0.0/8); everything private is refused otherwise",
    )

    # --- result mirroring
    mirror_enabled: bool = False
    mirror_dir: Path = Path("./kling-gateway-media")
    mirror_max_bytes: int = Field(512 * 1024 * 1024, ge=1024)
    mirror_timeout_seconds: float = Field(300.0, gt=0)
    mirror_retention_days: float = Field(30.0, gt=0)
    mirror_url_ttl_seconds: int = Field(86_400, ge=60)

    # --- money
    billing: bool = Field(
        True, description="reserve, settle and refund credits per task (off: no money)"
    )
    billing_policy: Literal["requested", "actual"] = Field(
        "requested",
        description="bill the requested seconds, or the video's real duration rounded up",
    )
    prices_file: Path | None = Field(
        None,
        description="JSON prices ({model: {mode: {silent|sound|voice: credits per second}}}) "
        "loaded at start",
    )
    bootstrap_credits: str = Field(
        "1000", description="credits given to the first-start user 'default'"
    )

    # --- limits (all off when unset)
    user_max_in_flight: int | None = Field(
        None, ge=1, description="unfinished tasks per user → 429/1303"
    )
    key_max_in_flight: int | None = Field(
        None, ge=1, description="unfinished tasks per API key → 429/1303"
    )
    key_rate_per_second: float | None = Field(
        None, gt=0, description="token-bucket refill per key → 429/1302"
    )
    key_rate_burst: int = Field(20, ge=1)
    upstream_model_concurrency: int | None = Field(
        None, ge=1, description="tasks in flight per (upstream account, upstream model)"
    )
    upstream_queue_wait_seconds: float = Field(
        0.0,
        ge=0,
        le=60,
        description="how long a create may wait for an upstream slot before 429/1303",
    )
    redis_url: SecretStr | None = Field(
        None, description="Redis for rate-limit buckets (default: the DB)"
    )

    # --- operators
    admin_token: SecretStr | None = Field(
        None, description="Bearer token for /admin/v1 (unset: admin API off)"
    )

    @field_validator(
        "kling_access_key",
        "kling_secret_key",
        "kling_api_key",
        "master_key",
        "admin_token",
        "upstream_webhook_secret",
        "public_base_url",
        "redis_url",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, v: object) -> object:
        """``KGW_KLING_API_KEY=`` in a .env template means "not set", not "an empty key"."""
        return None if isinstance(v, str) and not v.strip() else v

    @model_validator(mode="before")
    @classmethod
    def _home_defaults(cls, data: Any) -> Any:
        """The SQLite file and the key file default into KGW_HOME: serve and CLI find one place."""
        if not isinstance(data, dict):
            return data
        home = Path(str(data.get("home") or ".")).expanduser()
        defaults = {
            "database_url": f"sqlite+aiosqlite:///{home}/{DATABASE_FILE}",
            "master_key_file": home / MASTER_KEY_FILE,
        }
        return {**defaults, **data, "home": home}

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, v: str) -> str:
        if not (v.startswith("sqlite+aiosqlite://") or v.startswith("postgresql+asyncpg://")):
            raise ValueError(
                "KGW_DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg:// "
                f"(got {v.split('://', 1)[0]}://…)"
            )
        return v

    @field_validator("master_key")
    @classmethod
    def _fernet_shaped(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None:
            return v
        try:
            raw = base64.urlsafe_b64decode(v.get_secret_value().encode())
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise ValueError(
                "KGW_MASTER_KEY must be 32 bytes in urlsafe base64; make one with "
                "`kling-gateway keys new-master-key`"
            )
        return v

    @model_validator(mode="after")
    def _credentials_complete(self) -> Settings:
        if (self.kling_access_key is None) != (self.kling_secret_key is None):
            raise ValueError("set both KGW_KLING_ACCESS_KEY and KGW_KLING_SECRET_KEY, or neither")
        return self

    @field_validator("public_base_url")
    @classmethod
    def _http_base(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("KGW_PUBLIC_BASE_URL must start with http:// or https://")
        return v.rstrip("/") if v else v

    @property
    def render_scale(self) -> float:
        if self.poll_render_scale is not None:
            return self.poll_render_scale
        return 0.0 if self.use_simulator else 12.0

    @property
    def outbound_allow_list(self) -> list[str]:
        return [item.strip() for item in self.outbound_allow.split(",") if item.strip()]

    @property
    def has_kling_credentials(self) -> bool:
        return self.kling_api_key is not None or self.kling_access_key is not None

    @property
    def use_simulator(self) -> bool:
        return self.upstream == "simulator" or (
            self.upstream == "auto" and not self.has_kling_credentials
        )
