"""Shared fixtures: a simulator on a hand-driven clock, reached via httpx's in-process transport."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from kling_gateway.upstream.simulator import (
    ManualClock,
    Simulator,
    SimulatorConfig,
    create_simulator_app,
    get_simulator,
)

AK, SK = "sim-ak", "sim-sk"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_jwt(header: dict[str, Any], claims: dict[str, Any], key: str) -> str:
    """Hand-built HS256 token: tests control the header exactly, and PyJWT's encode would warn (an
    error under pytest) about the short default secret."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def make_token(
    clock: ManualClock, ak: str = AK, sk: str = SK, *, exp_in: float = 1800, nbf_in: float = -5
) -> str:
    now = int(clock())
    claims = {"iss": ak, "exp": int(now + exp_in), "nbf": int(now + nbf_in)}
    return raw_jwt({"alg": "HS256", "typ": "JWT"}, claims, sk)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def config() -> SimulatorConfig:
    return SimulatorConfig(seed=7, callback_retry_delay_seconds=0.0, tick_seconds=0.005)


class Harness:
    """One simulator plus a client authenticated as the default AK."""

    def __init__(self, app: Any, clock: ManualClock, client: httpx.AsyncClient) -> None:
        self.app = app
        self.clock = clock
        self.client = client
        self.sim: Simulator = get_simulator(app)

    def auth(self, ak: str = AK, sk: str = SK) -> dict[str, str]:
        return {"Authorization": f"Bearer {make_token(self.clock, ak, sk)}"}

    async def create(self, body: dict[str, Any] | None = None, **headers: str) -> httpx.Response:
        payload = {"prompt": "a red fox in snow"} if body is None else body
        return await self.client.post(
            "/v1/videos/text2video", json=payload, headers=headers or self.auth()
        )

    async def get(self, path: str, **headers: str) -> httpx.Response:
        return await self.client.get(path, headers=headers or self.auth())

    def tick(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.sim.advance()


HarnessFactory = Callable[..., Harness]


@pytest.fixture
async def harness(clock: ManualClock, config: SimulatorConfig) -> AsyncIterator[Harness]:
    app = create_simulator_app(config, clock=clock)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sim"
    ) as client:
        yield Harness(app, clock, client)
