"""Authenticator against a real AccountStore on a temp SQLite DB, driven by a hand-moved clock."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.fernet import Fernet

from kling_gateway.crypto import SecretBox
from kling_gateway.errors import AuthError, PermissionDenied
from kling_gateway.services.auth import (
    AK_PREFIX,
    SK_PREFIX,
    Authenticator,
    Principal,
    hash_key,
    new_aksk,
    new_sk,
)
from kling_gateway.storage.accounts import AccountStore
from kling_gateway.storage.db import make_engine, upgrade

# Each test's fake clock starts at the real time (env.t0) so tokens look like a real client's; both
# fresh and cached tokens are judged by that injected clock.
LEEWAY = 10
TTL = 5.0
LONG_SECRET = "L" * 80  # long enough for HS512 without PyJWT's short-key warning


class FakeClock:
    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Env:
    store: AccountStore
    box: SecretBox
    clock: FakeClock
    auth: Authenticator
    user_id: int
    t0: float


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/t.db")
    await upgrade(engine)
    store = AccountStore(engine)
    box = SecretBox(Fernet.generate_key())
    clock = FakeClock()
    user = await store.create_user("alice", int(clock.now * 1000))
    auth = Authenticator(store, box, clock, ttl=TTL, leeway=LEEWAY)
    try:
        yield Env(store, box, clock, auth, user.id, clock.now)
    finally:
        await engine.dispose()


async def add_sk(env: Env, **kw: Any) -> tuple[str, int]:
    key, prefix, digest = new_sk()
    key_id = await env.store.add_key(
        user_id=env.user_id,
        name="k",
        kind="sk",
        prefix=prefix,
        now_ms=int(env.t0 * 1000),
        key_hash=digest,
        **kw,
    )
    return key, key_id


async def add_aksk(env: Env, secret: str | None = None, **kw: Any) -> tuple[str, str, int]:
    ak, sk = new_aksk()
    sk = secret or sk
    key_id = await env.store.add_key(
        user_id=env.user_id,
        name="p",
        kind="aksk",
        prefix=ak,
        now_ms=int(env.t0 * 1000),
        access_key=ak,
        secret_enc=env.box.encrypt(sk),
        **kw,
    )
    return ak, sk, key_id


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_jwt(claims: dict[str, Any], key: str) -> str:
    """HS256 by hand, for claims PyJWT refuses to encode (a non-string iss)."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    signing_input = f"{header}.{_b64(json.dumps(claims).encode())}"
    sig = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(sig)}"


def token(
    ak: str, sk: str, now: float | None = None, *, exp: float = 1800, nbf: float = -5, **extra: Any
) -> str:
    now = time.time() if now is None else now
    claims: dict[str, Any] = {"iss": ak, "exp": int(now + exp), "nbf": int(now + nbf), **extra}
    return jwt.encode(claims, sk, algorithm="HS256", headers={"typ": "JWT"})


async def code_of(env: Env, header: str | None) -> int:
    with pytest.raises(AuthError) as info:
        await env.auth.authenticate(header)
    assert info.value.http_status == 401
    return info.value.code


# --- key helpers


def test_key_helpers() -> None:
    key, prefix, digest = new_sk()
    assert key.startswith(SK_PREFIX) and len(key) > 40
    assert prefix == key[:11] and key.startswith(prefix)
    assert digest == hash_key(key)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert new_sk()[0] != key
    ak, sk = new_aksk()
    assert re.fullmatch(AK_PREFIX + r"[0-9a-f]{20}", ak)  # fits the 24-character prefix column
    assert len(sk) >= 32  # HS256 key at least the digest size
    assert new_aksk() != (ak, sk)


def test_hash_key_is_sha256_hex() -> None:
    assert hash_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


# --- sk keys


@pytest.mark.parametrize("header", [None, ""])
async def test_missing_header_is_1001(env: Env, header: str | None) -> None:
    assert await code_of(env, header) == 1001


@pytest.mark.parametrize(
    "header",
    [
        "Basic dXNlcjpwYXNz",
        "Token sk-whatever",
        "Bearer",
        "Bearer    ",
        "sk-no-scheme",
        "Bearer sk-unknown-key-000000000000000000",
        "Bearer not-a-jwt",
        "Bearer a.b.c",
        "Bearer ....",
        "Bearer eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln",
    ],
)
async def test_invalid_headers_are_1002(env: Env, header: str) -> None:
    assert await code_of(env, header) == 1002


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
async def test_sk_key_authenticates_case_insensitive_scheme(env: Env, scheme: str) -> None:
    key, key_id = await add_sk(env)
    principal = await env.auth.authenticate(f"{scheme} {key}")
    assert principal.key.id == key_id
    assert principal.user_id == env.user_id
    assert principal.secret is None


async def test_wrong_scheme_with_valid_key_is_1002(env: Env) -> None:
    key, _ = await add_sk(env)
    assert await code_of(env, f"Basic {key}") == 1002


@pytest.mark.parametrize("what", ["key", "user"])
async def test_disabled_key_or_user_is_1002(env: Env, what: str) -> None:
    key, key_id = await add_sk(env)
    ak, sk, pair_id = await add_aksk(env)
    if what == "user":
        await env.store.set_user_disabled("alice", True)
    else:
        await env.store.set_key_disabled(key_id, True)
        await env.store.set_key_disabled(pair_id, True)
    assert await code_of(env, f"Bearer {key}") == 1002
    assert await code_of(env, f"Bearer {token(ak, sk)}") == 1002


@pytest.mark.parametrize(("offset_ms", "code"), [(-1, 1004), (0, 1004), (1, None)])
async def test_key_expires_at(env: Env, offset_ms: int, code: int | None) -> None:
    key, _ = await add_sk(env, expires_at=int(env.t0 * 1000) + offset_ms)
    if code is None:
        assert (await env.auth.authenticate(f"Bearer {key}")).key.expires_at is not None
    else:
        assert await code_of(env, f"Bearer {key}") == code


async def test_key_expiry_applies_to_cached_lookups_as_clock_moves(env: Env) -> None:
    key, _ = await add_sk(env, expires_at=int(env.t0 * 1000) + 2000)
    await env.auth.authenticate(f"Bearer {key}")
    env.clock.advance(2)
    assert await code_of(env, f"Bearer {key}") == 1004


async def test_expired_aksk_key_is_1004(env: Env) -> None:
    ak, sk, _ = await add_aksk(env, expires_at=int(env.t0 * 1000) - 1)
    assert await code_of(env, f"Bearer {token(ak, sk)}") == 1004  # even with a valid token


# --- JWTs


async def test_valid_jwt_returns_principal_with_secret(env: Env) -> None:
    ak, sk, key_id = await add_aksk(env)
    principal = await env.auth.authenticate(f"Bearer {token(ak, sk)}")
    assert principal.key.id == key_id
    assert principal.key.access_key == ak
    assert principal.secret == sk


@pytest.mark.parametrize(
    ("exp", "nbf", "code"),
    [
        (1800, -5, None),
        (1800, LEEWAY - 2, None),  # nbf ahead but within leeway
        (1800, LEEWAY + 3, 1003),
        (1800, 600, 1003),
        (-LEEWAY + 2, -100, None),  # exp passed but within leeway
        (-LEEWAY, -100, 1004),
        (-3600, -7200, 1004),
    ],
)
async def test_jwt_time_window(env: Env, exp: float, nbf: float, code: int | None) -> None:
    ak, sk, _ = await add_aksk(env)
    header = f"Bearer {token(ak, sk, exp=exp, nbf=nbf)}"
    if code is None:
        assert (await env.auth.authenticate(header)).secret == sk
    else:
        assert await code_of(env, header) == code


async def test_jwt_rejections_are_1002(env: Env) -> None:
    ak, sk, _ = await add_aksk(env)
    _, other_sk, _ = await add_aksk(env)
    ak512, sk512, _ = await add_aksk(env, secret=LONG_SECRET)
    now = int(time.time())
    cases = {
        "unknown iss": token("ak-unknown", sk),
        "bad signature": token(ak, other_sk),
        "no exp": jwt.encode({"iss": ak, "nbf": now - 5}, sk, algorithm="HS256"),
        "no iss": jwt.encode({"exp": now + 60}, sk, algorithm="HS256"),
        "empty iss": jwt.encode({"iss": "", "exp": now + 60}, sk, algorithm="HS256"),
        "int iss": raw_jwt({"iss": 42, "exp": now + 60}, sk),
        "alg none": jwt.encode({"iss": ak, "exp": now + 60}, "", algorithm="none"),
        "HS512": jwt.encode({"iss": ak512, "exp": now + 60}, sk512, algorithm="HS512"),
        "tampered payload": _swap_payload(token(ak, sk), token(ak, sk, exp=99_999)),
        "signature stripped": token(ak, sk).rsplit(".", 1)[0] + ".",
        "non-int exp": jwt.encode({"iss": ak, "exp": "soon"}, sk, algorithm="HS256"),
    }
    got = {name: await code_of(env, f"Bearer {tok}") for name, tok in cases.items()}
    assert got == dict.fromkeys(cases, 1002)


def _swap_payload(good: str, other: str) -> str:
    head, _, sig = good.split(".")
    return f"{head}.{other.split('.')[1]}.{sig}"


async def test_extra_claims_missing_typ_and_missing_nbf_are_accepted(env: Env) -> None:
    ak, sk, _ = await add_aksk(env)
    now = int(time.time())
    with_iat = token(ak, sk, iat=now, jti="abc", sub="someone")
    no_typ = jwt.encode({"iss": ak, "exp": now + 60, "nbf": now - 5}, sk, headers={"typ": None})
    assert "typ" not in jwt.get_unverified_header(no_typ)
    no_nbf = jwt.encode({"iss": ak, "exp": now + 60}, sk, algorithm="HS256")
    for tok in (with_iat, no_typ, no_nbf):
        assert (await env.auth.authenticate(f"Bearer {tok}")).secret == sk


async def test_cached_token_is_rechecked_against_its_window(env: Env) -> None:
    ak, sk, _ = await add_aksk(env)
    # nbf 8 s ahead (inside the 10 s leeway), exp 60 s ahead.
    t0 = env.t0
    header = f"Bearer {token(ak, sk, t0, exp=60, nbf=8)}"
    await env.auth.authenticate(header)
    # Clock steps back: now + leeway < nbf, so the cached token is not yet valid.
    env.clock.advance(-3)
    assert await code_of(env, header) == 1003
    env.clock.advance(3)
    assert (await env.auth.authenticate(header)).secret == sk
    # exp=t0+60, leeway 10: still fine at t0+69, expired at t0+70.
    env.clock.now = t0 + 60 + LEEWAY - 1
    assert (await env.auth.authenticate(header)).secret == sk
    env.clock.now = t0 + 60 + LEEWAY
    assert await code_of(env, header) == 1004


async def test_fresh_jwt_is_judged_by_the_injected_clock(env: Env) -> None:
    ak, sk, _ = await add_aksk(env)
    env.clock.advance(7200)  # the gateway's clock is two hours ahead of the wall clock
    header = f"Bearer {token(ak, sk, env.clock.now)}"
    assert (await env.auth.authenticate(header)).secret == sk


# --- caching


async def test_disabled_sk_key_works_until_ttl_then_stops(env: Env) -> None:
    key, key_id = await add_sk(env)
    header = f"Bearer {key}"
    await env.auth.authenticate(header)
    await env.store.set_key_disabled(key_id, True)
    env.clock.advance(TTL - 0.5)
    assert (await env.auth.authenticate(header)).key.id == key_id  # still the cached record
    env.clock.advance(0.5)
    assert await code_of(env, header) == 1002


async def test_forget_drops_cache_immediately(env: Env) -> None:
    key, key_id = await add_sk(env)
    ak, sk, pair_id = await add_aksk(env)
    sk_header, jwt_header = f"Bearer {key}", f"Bearer {token(ak, sk)}"
    await env.auth.authenticate(sk_header)
    await env.auth.authenticate(jwt_header)
    await env.store.set_key_disabled(key_id, True)
    await env.store.set_key_disabled(pair_id, True)
    env.auth.forget()
    assert await code_of(env, sk_header) == 1002
    assert await code_of(env, jwt_header) == 1002


async def test_unknown_key_is_negatively_cached_for_ttl(env: Env) -> None:
    key, prefix, digest = new_sk()
    header = f"Bearer {key}"
    assert await code_of(env, header) == 1002
    await env.store.add_key(
        user_id=env.user_id, name="late", kind="sk", prefix=prefix, now_ms=0, key_hash=digest
    )
    assert await code_of(env, header) == 1002  # the miss is cached
    env.clock.advance(TTL)
    assert (await env.auth.authenticate(header)).user_id == env.user_id


async def test_disabled_aksk_key_stops_new_tokens_after_ttl(env: Env) -> None:
    ak, sk, pair_id = await add_aksk(env)
    await env.auth.authenticate(f"Bearer {token(ak, sk)}")
    await env.store.set_key_disabled(pair_id, True)
    env.clock.advance(TTL)
    fresh = token(ak, sk, env.clock.now)
    assert await code_of(env, f"Bearer {fresh}") == 1002


async def test_disabled_aksk_key_stops_reused_token_after_ttl(env: Env) -> None:
    ak, sk, pair_id = await add_aksk(env)
    header = f"Bearer {token(ak, sk, exp=86_400)}"
    await env.auth.authenticate(header)
    await env.store.set_key_disabled(pair_id, True)
    env.clock.advance(TTL + 1)
    assert await code_of(env, header) == 1002


# --- model permissions


@pytest.mark.parametrize(
    ("allowed", "model", "ok"),
    [
        (None, "kling-v3", True),
        (None, "anything", True),
        (["kling-v3"], "kling-v3", True),
        (["kling-v3"], "kling-v1", False),
        (["kling-v1", "kling-v2-6"], "kling-v2-6", True),
        (["kling-v1", "kling-v2-6"], "KLING-V1", False),
        (["kling-v1"], "", False),
    ],
)
async def test_allowed_models(env: Env, allowed: list[str] | None, model: str, ok: bool) -> None:
    key, _ = await add_sk(env, allowed_models=allowed)
    principal = await env.auth.authenticate(f"Bearer {key}")
    assert isinstance(principal, Principal)
    if ok:
        principal.check_model(model)
        return
    with pytest.raises(PermissionDenied) as info:
        principal.check_model(model)
    assert info.value.code == 1103
    assert info.value.http_status == 403
    assert repr(model) in info.value.message
