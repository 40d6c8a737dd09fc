"""How the gateway signs its own requests to Kling (kling-api.md §2.2–2.3)."""

from __future__ import annotations

import time

import jwt
import pytest

from kling_gateway.upstream.auth import (
    NOT_BEFORE_SKEW_S,
    REFRESH_MARGIN_S,
    TOKEN_LIFETIME_S,
    Authorizer,
    Credentials,
    sign_jwt,
)

AK = "ak-upstream-0123456789"
SK = "sk-upstream-secret-0123456789abcdefghijklmnop"  # >= 32 bytes: no PyJWT short-key warning
API_KEY = "kling-api-key-0123456789abcdefghijkl"
T0 = 1_781_080_000.0


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def decode(token: str) -> dict[str, object]:
    """Signature-checked claims; exp/nbf compared by hand, as the fake clock is not the wall's."""
    return jwt.decode(
        token,
        SK,
        algorithms=["HS256"],
        options={"verify_exp": False, "verify_nbf": False, "require": ["exp"]},
    )


def test_constants_match_kling_sample() -> None:
    assert (TOKEN_LIFETIME_S, NOT_BEFORE_SKEW_S) == (1800, 5)
    assert 0 < REFRESH_MARGIN_S < TOKEN_LIFETIME_S


@pytest.mark.parametrize("now", [T0, T0 + 0.999, 1_700_000_000.5])
def test_sign_jwt_claims_and_header(now: float) -> None:
    token = sign_jwt(AK, SK, now)
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    claims = decode(token)
    issued = int(now)
    assert claims == {"iss": AK, "exp": issued + 1800, "nbf": issued - 5}
    assert all(isinstance(claims[k], int) for k in ("exp", "nbf"))


def test_sign_jwt_is_verifiable_only_with_the_secret() -> None:
    token = sign_jwt(AK, SK, T0)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "x" * 40, algorithms=["HS256"], options={"verify_exp": False})
    with pytest.raises(jwt.InvalidAlgorithmError):
        jwt.decode(token, SK, algorithms=["HS512"], options={"verify_exp": False})


def test_sign_jwt_passes_pyjwt_time_checks_at_its_own_now() -> None:
    now = time.time()
    claims = jwt.decode(sign_jwt(AK, SK, now), SK, algorithms=["HS256"])
    assert claims["iss"] == AK


def test_authorizer_caches_until_refresh_margin_then_resigns() -> None:
    clock = FakeClock()
    auth = Authorizer(Credentials(access_key=AK, secret_key=SK), clock)
    first = auth.header()
    assert first.startswith("Bearer ")
    assert decode(first.removeprefix("Bearer "))["exp"] == int(T0) + 1800

    refresh_at = T0 + TOKEN_LIFETIME_S - REFRESH_MARGIN_S
    for t in (T0 + 1, T0 + 600, refresh_at - 0.001):
        clock.now = t
        assert auth.header() == first, t

    clock.now = refresh_at
    second = auth.header()
    assert second != first
    claims = decode(second.removeprefix("Bearer "))
    assert claims["exp"] == int(refresh_at) + 1800
    assert claims["nbf"] == int(refresh_at) - 5
    # The old token was still valid at the moment it was replaced.
    old = decode(first.removeprefix("Bearer "))
    assert isinstance(old["exp"], int) and old["exp"] > refresh_at

    clock.now = refresh_at + 10
    assert auth.header() == second


def test_authorizer_reads_clock_lazily() -> None:
    clock = FakeClock()
    auth = Authorizer(Credentials(access_key=AK, secret_key=SK), clock)
    clock.now = T0 + 5000
    claims = decode(auth.header().removeprefix("Bearer "))
    assert claims["nbf"] == int(T0 + 5000) - 5


@pytest.mark.parametrize(
    "creds",
    [
        Credentials(api_key=API_KEY),
        Credentials(access_key=AK, secret_key=SK, api_key=API_KEY),  # API key wins
    ],
)
def test_api_key_passes_through(creds: Credentials) -> None:
    clock = FakeClock()
    auth = Authorizer(creds, clock)
    assert auth.header() == f"Bearer {API_KEY}"
    clock.now += 10 * TOKEN_LIFETIME_S
    assert auth.header() == f"Bearer {API_KEY}"


@pytest.mark.parametrize(
    "creds",
    [
        Credentials(api_key=API_KEY),
        Credentials(access_key=AK, secret_key=SK),
        Credentials(access_key=AK, secret_key=SK, api_key=API_KEY),
    ],
)
def test_repr_never_contains_secrets(creds: Credentials) -> None:
    for text in (repr(creds), str(creds), f"{creds}", repr([creds]), repr({"c": creds})):
        assert SK not in text
        assert API_KEY not in text
        assert "***" in text


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"access_key": AK},
        {"secret_key": SK},
        {"access_key": AK, "secret_key": ""},
        {"access_key": "", "secret_key": SK},
        {"access_key": None, "secret_key": None, "api_key": None},
    ],
)
def test_credentials_need_api_key_or_full_pair(kwargs: dict[str, str | None]) -> None:
    with pytest.raises(ValueError, match="API key or both an access key and a secret key"):
        Credentials(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"api_key": API_KEY},
        {"access_key": AK, "secret_key": SK},
        {"api_key": API_KEY, "access_key": AK},
    ],
)
def test_credentials_accepted(kwargs: dict[str, str]) -> None:
    creds = Credentials(**kwargs)
    assert Authorizer(creds, FakeClock()).header().startswith("Bearer ")


def test_credentials_are_immutable() -> None:
    creds = Credentials(api_key=API_KEY)
    with pytest.raises(AttributeError):
        creds.api_key = "other"  # type: ignore[misc]


def test_empty_api_key_is_rejected() -> None:
    with pytest.raises(ValueError):
        Credentials(api_key="")
