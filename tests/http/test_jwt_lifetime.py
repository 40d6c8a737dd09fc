"""A client JWT may live at most KGW_JWT_MAX_LIFETIME_SECONDS; odd exp/nbf numbers are a 401."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import orjson
import pytest

from kling_gateway.services import admin
from tests.conftest import TEXT2VIDEO, Env

BODY = {"model_name": "kling-v1", "prompt": "a lighthouse"}
MAX = 3_600


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"jwt_max_lifetime_seconds": MAX}


def _b64(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def _token(sk: str, payload: bytes) -> str:
    """HS256 over a payload written by hand, so it can hold NaN, Infinity or a 400-digit integer."""
    signed = _b64(b'{"alg":"HS256","typ":"JWT"}') + b"." + _b64(payload)
    sig = _b64(hmac.new(sk.encode(), signed, hashlib.sha256).digest())
    return (signed + b"." + sig).decode()


# nbf and exp as JSON text ({now±n} is relative); the code expected, 0 for accepted
CASES: dict[str, tuple[str, str, int]] = {
    "30 minutes": ("{now-5}", "{now+1800}", 0),
    "exactly the maximum": ("{now}", f"{{now+{MAX}}}", 0),
    "a minute past the maximum": ("{now}", f"{{now+{MAX + 60}}}", 1002),
    "no nbf, a day": ("", "{now+86400}", 1002),
    "1e300": ("{now-5}", "1e300", 1002),
    "1e400 (inf)": ("{now-5}", "1e400", 1002),
    "NaN": ("{now-5}", "NaN", 1002),
    "Infinity": ("{now-5}", "Infinity", 1002),
    "400-digit exp": ("{now-5}", "1" + "0" * 400, 1002),
    "400-digit nbf": ("1" + "0" * 400, "1" + "0" * 399 + "1", 1003),
    "NaN nbf": ("NaN", "{now+60}", 1002),
    "negative 400-digit exp": ("{now-5}", "-1" + "0" * 400, 1004),
    "expired": ("{now-900}", "{now-600}", 1004),
}


def _number(template: str, now: int) -> str:
    if not template.startswith("{"):
        return template
    expr = template.strip("{}")  # "now", "now+60" or "now-5"
    sign = 1 if "+" in expr else -1
    offset = expr.replace("now", "").lstrip("+-")
    return str(now + sign * int(offset or 0))


@pytest.mark.parametrize("case", sorted(CASES))
async def test_jwt_lifetime_and_odd_numbers(env: Env, case: str) -> None:
    nbf, exp, code = CASES[case]
    issued = await admin.create_key(env.gw, "alice", aksk=True)
    assert issued.access_key and issued.secret_key
    now = int(env.clock())
    claims = f'"iss":{orjson.dumps(issued.access_key).decode()},"exp":{_number(exp, now)}'
    if nbf:
        claims += f',"nbf":{_number(nbf, now)}'
    token = _token(issued.secret_key, ("{" + claims + "}").encode())
    headers = {"Authorization": f"Bearer {token}"}
    resp = await env.client.post(TEXT2VIDEO, json=BODY, headers=headers)
    if code == 0:
        assert resp.status_code == 200, resp.text
    else:
        assert resp.status_code == 401, resp.text
        assert resp.json()["code"] == code
