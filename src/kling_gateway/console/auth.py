"""The operator token and console sessions.

The token is stored as its SHA-256 only (like ``sk-`` keys); ``KGW_ADMIN_TOKEN``, when set, is the
only token and the stored one is ignored. A session is a random cookie id stored hashed, with an
absolute expiry and a synchronizer CSRF token of its own."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from enum import Enum

from ..services.gateway import Gateway
from ..storage.console import ConsoleStore, SessionRow

TOKEN_PREFIX = "kgw-op-"
SESSION_SECONDS = 12 * 3600


class Verdict(Enum):
    OK = "ok"
    BAD = "bad"
    OFF = "off"  # no token anywhere: nobody can be an operator over HTTP


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _same(a: str, b: str) -> bool:
    """Constant-time on bytes: compare_digest refuses non-ASCII str, and a header may hold any."""
    return hmac.compare_digest(a.encode(), b.encode())


async def check_token(gw: Gateway, presented: str) -> Verdict:
    configured = gw.settings.admin_token
    if configured is not None:
        return Verdict.OK if _same(presented, configured.get_secret_value()) else Verdict.BAD
    stored = await ConsoleStore(gw.engine).token_hash()
    if stored is None:
        return Verdict.OFF
    return Verdict.OK if _same(digest(presented), stored) else Verdict.BAD


async def bootstrap_token(gw: Gateway) -> str | None:
    """First start: a token to print once. None when KGW_ADMIN_TOKEN rules or one exists already."""
    if gw.settings.admin_token is not None:
        return None
    token = new_token()
    return (
        token
        if await ConsoleStore(gw.engine).add_token_if_absent(digest(token), gw.now_ms())
        else None
    )


async def issue_token(gw: Gateway) -> str:
    """A new token replacing the old one (whose sessions end with it)."""
    token = new_token()
    await ConsoleStore(gw.engine).replace_token(digest(token), gw.now_ms())
    return token


async def open_session(gw: Gateway) -> tuple[str, SessionRow]:
    raw = secrets.token_urlsafe(32)
    now = gw.now_ms()
    row = SessionRow(digest(raw), secrets.token_urlsafe(32), now, now + SESSION_SECONDS * 1000)
    await ConsoleStore(gw.engine).add_session(row)
    return raw, row


async def find_session(gw: Gateway, raw: str | None) -> SessionRow | None:
    if not raw or len(raw) > 128:
        return None
    return await ConsoleStore(gw.engine).session(digest(raw), gw.now_ms())


async def close_session(gw: Gateway, raw: str | None) -> None:
    if raw:
        await ConsoleStore(gw.engine).drop_session(digest(raw))
