"""Secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256 from ``cryptography``) under
the operator master key.

The master key comes from settings; failing that, it is generated once into a 0600 file in KGW_HOME,
so a first ``serve`` works without setup and a restart can still read what it stored. Only a start
that finds nothing encrypted may generate one (``check_master_key``).
"""

from __future__ import annotations

import hmac
import os
import time
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from .errors import ConfigError
from .settings import Settings


class SecretBox:
    __slots__ = ("_fernet",)

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def encrypt(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ConfigError(
                "a stored secret cannot be decrypted: "
                "the master key differs from the one it was stored with"
            ) from exc


def _read_key_file(path: Path) -> bytes:
    key = path.read_bytes().strip()
    try:
        Fernet(key)
    except ValueError as exc:
        raise ConfigError(
            f"KGW_MASTER_KEY_FILE {path.resolve()} is not a master key file (a Fernet key: "
            "32 bytes, urlsafe base64); restore the original file or set KGW_MASTER_KEY"
        ) from exc
    return key


def load_master_key(settings: Settings) -> bytes:
    if settings.master_key is not None:
        return settings.master_key.get_secret_value().encode()
    path: Path = settings.master_key_file
    if path.exists():
        return _read_key_file(path)
    key = Fernet.generate_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process started at the same moment and won: use its key
        for _ in range(100):  # it may not have written the key yet
            if path.stat().st_size:
                break
            time.sleep(0.01)
        return _read_key_file(path)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key + b"\n")
    return key


def secret_box(settings: Settings) -> SecretBox:
    return SecretBox(load_master_key(settings))


def key_source(settings: Settings) -> str:
    """Where the master key comes from, as the operator would set it."""
    if settings.master_key is not None:
        return "KGW_MASTER_KEY"
    return f"KGW_MASTER_KEY_FILE {settings.master_key_file.resolve()}"


def check_master_key(settings: Settings, *, may_create: bool, stored: str | None) -> None:
    """Before a Gateway is built: a key is generated only where nothing was ever encrypted (and
    only by a command that may set up), and a key that does not open ``stored`` stops the start."""
    if settings.master_key is None and not settings.master_key_file.exists():
        if not may_create:
            raise ConfigError(
                f"no master key: KGW_MASTER_KEY is unset and {key_source(settings)} does not exist "
                f"(KGW_HOME={settings.home.resolve()}); point them at the key `serve` uses"
            )
        if stored is not None:
            raise ConfigError(
                f"{key_source(settings)} is missing but the database holds secrets encrypted "
                "with it: restore the file or set KGW_MASTER_KEY to that key (a new key could not "
                "read them)"
            )
        return  # nothing encrypted yet: the first start generates the key
    if stored is None:
        return
    try:
        Fernet(load_master_key(settings)).decrypt(stored.encode())
    except InvalidToken:
        raise ConfigError(
            f"{key_source(settings)} does not decrypt the secrets stored in the database: "
            "it is not the key they were stored with; restore that key"
        ) from None


def same_secret(given: str, expected: str) -> bool:
    """Constant-time equality of a client-supplied string with a secret, for any characters.

    ``hmac.compare_digest`` raises on non-ASCII ``str`` (a 500 for a header of latin-1 bytes), so
    both sides are compared as UTF-8 bytes; ``surrogatepass`` keeps any ``str`` encodable.
    """
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )
