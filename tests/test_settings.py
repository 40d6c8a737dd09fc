"""Settings built explicitly, with no KGW_* variable or .env file leaking in from the machine."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from kling_gateway.settings import Settings

KEY = Fernet.generate_key().decode()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("KGW_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # a stray ./.env cannot be read either


def make(**kw: Any) -> Settings:
    return Settings(_env_file=None, **kw)


def messages(exc: ValidationError) -> str:
    """What the CLI prints: the 'msg' of each error, never the input value."""
    return "\n".join(e["msg"] for e in exc.errors())


def test_defaults() -> None:
    s = make()
    assert s.database_url == "sqlite+aiosqlite:///./kling-gateway.db"
    assert s.master_key is None
    assert s.master_key_file == Path("./kling-gateway.key")
    assert (s.host, s.port) == ("127.0.0.1", 8000)
    assert s.max_body_bytes == 1024 * 1024
    assert s.strict_fields is False
    assert s.max_external_task_id_len == 64
    assert (s.jwt_leeway_seconds, s.key_cache_seconds) == (10, 5.0)
    assert s.models_file is None
    assert s.kling_base_url == "https://api-singapore.klingai.com"
    assert (s.kling_access_key, s.kling_secret_key, s.kling_api_key) == (None, None, None)
    assert s.upstream == "auto"
    assert (s.first_poll_seconds, s.max_poll_seconds) == (2.0, 30.0)
    assert s.has_kling_credentials is False
    assert s.use_simulator is True


def test_reads_prefixed_env_but_not_dotenv_when_disabled(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("KGW_HOST=0.0.0.0\n")
    monkeypatch.setenv("KGW_PORT", "9001")
    monkeypatch.setenv("PORT", "1")  # unprefixed names are not ours
    s = make()
    assert (s.port, s.host) == (9001, "127.0.0.1")
    assert Settings(_env_file=tmp_path / ".env").host == "0.0.0.0"


def test_settings_are_frozen() -> None:
    s = make()
    with pytest.raises(ValidationError):
        s.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///x.db",
        "postgresql://user:hunter2@db/kgw",
        "postgres+asyncpg://user:hunter2@db/kgw",
        "mysql+aiomysql://user:hunter2@db/kgw",
        "x.db",
        "",
    ],
)
def test_bad_database_url(url: str) -> None:
    with pytest.raises(ValidationError) as info:
        make(database_url=url)
    text = messages(info.value)
    assert "KGW_DATABASE_URL" in text
    assert "sqlite+aiosqlite://" in text and "postgresql+asyncpg://" in text
    assert "hunter2" not in text


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite:///./a.db",
        "sqlite+aiosqlite:///:memory:",
        "postgresql+asyncpg://u:p@h:5432/db",
    ],
)
def test_good_database_url(url: str) -> None:
    assert make(database_url=url).database_url == url


def test_master_key_accepted() -> None:
    s = make(master_key=KEY)
    assert s.master_key is not None and s.master_key.get_secret_value() == KEY
    assert KEY not in repr(s) and KEY not in str(s)


def test_blank_master_key_means_generate_one() -> None:
    assert make(master_key="").master_key is None
    assert make(master_key="  ").master_key is None


@pytest.mark.parametrize(
    "key",
    [
        "short",
        "not base64 at all!!",
        KEY.rstrip("="),  # padding missing
        KEY[:-4] + "====",
        "A" * 40 + "==",  # 31 bytes
        "A" * 44 + "A===",
        "QUFB" * 12,  # 36 bytes
    ],
)
def test_master_key_must_be_32_byte_urlsafe_base64(key: str) -> None:
    with pytest.raises(ValidationError) as info:
        make(master_key=key)
    text = messages(info.value)
    assert "KGW_MASTER_KEY must be 32 bytes" in text
    if key:
        assert key not in text


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"kling_access_key": "ak"}, ("KGW_KLING_ACCESS_KEY", "KGW_KLING_SECRET_KEY")),
        ({"kling_secret_key": "sk"}, ("KGW_KLING_ACCESS_KEY", "KGW_KLING_SECRET_KEY")),
        ({"kling_secret_key": "sk", "kling_api_key": "k"}, ("KGW_KLING_ACCESS_KEY",)),
        ({"upstream": "kling", "kling_access_key": "ak"}, ("KGW_KLING_SECRET_KEY",)),
        ({"upstream": "real"}, ()),
    ],
)
def test_incomplete_credentials(kwargs: dict[str, str], names: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError) as info:
        make(**kwargs)
    text = messages(info.value)
    assert all(n in text for n in names)


def test_credential_errors_do_not_echo_secrets() -> None:
    with pytest.raises(ValidationError) as info:
        make(kling_secret_key="s3cr3t-value-123")
    assert "s3cr3t-value-123" not in messages(info.value)


@pytest.mark.parametrize(
    ("kwargs", "has_creds", "simulator"),
    [
        ({}, False, True),
        ({"upstream": "simulator"}, False, True),
        ({"upstream": "auto", "kling_api_key": "k"}, True, False),
        ({"upstream": "auto", "kling_access_key": "ak", "kling_secret_key": "sk"}, True, False),
        ({"upstream": "simulator", "kling_api_key": "k"}, True, True),
        ({"upstream": "simulator", "kling_access_key": "a", "kling_secret_key": "s"}, True, True),
        ({"upstream": "kling", "kling_api_key": "k"}, True, False),
        ({"upstream": "kling", "kling_access_key": "ak", "kling_secret_key": "sk"}, True, False),
        (
            {
                "upstream": "kling",
                "kling_api_key": "k",
                "kling_access_key": "a",
                "kling_secret_key": "s",
            },
            True,
            False,
        ),
    ],
)
def test_use_simulator(kwargs: dict[str, str], has_creds: bool, simulator: bool) -> None:
    s = make(**kwargs)
    assert s.has_kling_credentials is has_creds
    assert s.use_simulator is simulator


def test_credentials_from_env_are_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KGW_KLING_ACCESS_KEY", "ak-visible")
    monkeypatch.setenv("KGW_KLING_SECRET_KEY", "very-secret-value")
    s = make()
    assert s.kling_secret_key is not None
    assert s.kling_secret_key.get_secret_value() == "very-secret-value"
    assert "very-secret-value" not in repr(s)
    assert s.use_simulator is False


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("port", 0),
        ("port", 65536),
        ("simulator_port", 0),
        ("max_body_bytes", 1023),
        ("jwt_leeway_seconds", -1),
        ("jwt_leeway_seconds", 301),
        ("key_cache_seconds", -0.1),
        ("max_external_task_id_len", 0),
        ("max_external_task_id_len", 256),
        ("upstream_connect_timeout", 0),
        ("refresh_interval_seconds", 0),
        ("max_poll_seconds", 0),
        ("first_poll_seconds", -1),
        ("refresh_batch", 0),
    ],
)
def test_field_bounds(field: str, value: float) -> None:
    with pytest.raises(ValidationError) as info:
        make(**{field: value})
    assert info.value.errors()[0]["loc"] == (field,)


def test_empty_api_key_env_is_not_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KGW_KLING_API_KEY", "")
    try:
        s = make()
    except ValidationError:
        return  # refusing the empty value is also fine
    assert s.use_simulator is True
