"""SecretBox (Fernet under the master key) and where the master key comes from."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from kling_gateway.crypto import SecretBox, load_master_key, secret_box
from kling_gateway.errors import ConfigError
from kling_gateway.settings import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("KGW_"):
            monkeypatch.delenv(name)


def settings(key_file: Path, master_key: str | None = None) -> Settings:
    return Settings(_env_file=None, master_key=master_key, master_key_file=key_file)


@pytest.mark.parametrize(
    "plain", ["", "sk-live-secret", "ключ 秘密 🔑", "x" * 10_000, "line1\nline2\x00"]
)
def test_round_trip(plain: str) -> None:
    box = SecretBox(Fernet.generate_key())
    token = box.encrypt(plain)
    assert box.decrypt(token) == plain
    if plain:
        assert plain not in token


def test_encryption_is_randomised() -> None:
    box = SecretBox(Fernet.generate_key())
    assert box.encrypt("same") != box.encrypt("same")


@pytest.mark.parametrize(
    "token",
    [
        SecretBox(Fernet.generate_key()).encrypt("secret"),  # another master key
        "not-a-token",
        "",
        Fernet(Fernet.generate_key()).encrypt(b"x").decode()[:-4] + "AAAA",
    ],
)
def test_decrypt_failures_are_config_errors(token: str) -> None:
    box = SecretBox(Fernet.generate_key())
    with pytest.raises(ConfigError, match="master key differs"):
        box.decrypt(token)


def test_tampered_token_is_config_error() -> None:
    box = SecretBox(Fernet.generate_key())
    token = box.encrypt("secret")
    flipped = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]
    with pytest.raises(ConfigError):
        box.decrypt(flipped)


def test_master_key_from_settings_wins_and_writes_nothing(tmp_path: Path) -> None:
    key = Fernet.generate_key()
    path = tmp_path / "k.key"
    assert load_master_key(settings(path, key.decode())) == key
    assert not path.exists()


def test_generated_key_file_is_0600_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "k.key"
    s = settings(path)
    first = load_master_key(s)
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == first + b"\n"
    Fernet(first)  # a valid Fernet key

    token = SecretBox(first).encrypt("kept across restarts")
    mtime = path.stat().st_mtime_ns
    second = load_master_key(s)
    assert second == first
    assert path.stat().st_mtime_ns == mtime  # not rewritten
    assert secret_box(s).decrypt(token) == "kept across restarts"


def test_existing_key_file_is_used_and_stripped(tmp_path: Path) -> None:
    key = Fernet.generate_key()
    path = tmp_path / "k.key"
    path.write_bytes(b"  " + key + b"\r\n\n")
    assert load_master_key(settings(path)) == key


def test_different_key_files_cannot_read_each_other(tmp_path: Path) -> None:
    a = secret_box(settings(tmp_path / "a.key"))
    b = secret_box(settings(tmp_path / "b.key"))
    with pytest.raises(ConfigError):
        b.decrypt(a.encrypt("secret"))


@pytest.mark.parametrize("content", [b"", b"not a key\n"])
def test_corrupt_key_file_is_config_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "k.key"
    path.write_bytes(content)
    with pytest.raises(ConfigError):
        secret_box(settings(path))
