"""The bare-ASGI create/get routes (http/hot.py) answer exactly as the FastAPI routes they stand in for.

Each scenario runs twice in one gateway: once through ``HotRoutes`` and once with it switched to pass
everything on to FastAPI; status, headers and body must match (request ids and minted task ids aside).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from kling_gateway.http import hot
from kling_gateway.http.hot import HotRoutes
from tests.conftest import TEXT2VIDEO, Env

Scenario = Callable[[Env], Awaitable[httpx.Response]]
_VOLATILE = ("request_id", "task_id", "created_at", "updated_at")


def _normal(resp: httpx.Response) -> tuple[int, list[tuple[str, str]], Any]:
    headers = [(k, v) for k, v in resp.headers.items() if k not in ("x-request-id", "content-length")]
    body = resp.json()
    if isinstance(body, dict):
        for key in _VOLATILE:
            body.pop(key, None)
        if isinstance(body.get("data"), dict):
            for key in _VOLATILE:
                body["data"].pop(key, None)
    return resp.status_code, headers, body


def _post(body: bytes, **headers: str) -> Scenario:
    async def run(env: Env) -> httpx.Response:
        return await env.client.post(TEXT2VIDEO, content=body, headers={**env.auth(), **headers})

    return run


async def _get_own(env: Env) -> httpx.Response:
    made = await env.create({"model_name": "kling-v1", "prompt": "x", "external_task_id": "own-1"})
    return await env.get(made.json()["data"]["task_id"])


async def _get_by_external(env: Env) -> httpx.Response:
    await env.create({"model_name": "kling-v1", "prompt": "x", "external_task_id": "ext-7"})
    return await env.get("ext-7")


SCENARIOS: dict[str, Scenario] = {
    "create": _post(b'{"model_name": "kling-v1", "prompt": "a fox"}', **{"content-type": "application/json"}),
    "create on /v1": lambda env: env.client.post(
        "/v1/videos/text2video", json={"model_name": "kling-v1", "prompt": "x"}, headers=env.auth()
    ),
    "bad json": _post(b"{not json"),
    "empty body": _post(b""),
    "not an object": _post(b"[1]"),
    "unknown model": _post(b'{"model_name": "nope", "prompt": "x"}'),
    "too large": _post(b'{"prompt": "' + b"x" * 2_000_000 + b'"}'),
    "no auth": lambda env: env.client.post(TEXT2VIDEO, json={"model_name": "kling-v1", "prompt": "x"}),
    "bad key": lambda env: env.client.post(
        TEXT2VIDEO, json={"model_name": "kling-v1"}, headers={"Authorization": "Bearer sk-nope"}
    ),
    "get own": _get_own,
    "get by external id": _get_by_external,
    "get missing": lambda env: env.get("no-such-task"),
    "get other user's": lambda env: env.get("no-such-task", user="bob"),
    "get no auth": lambda env: env.client.get(f"{TEXT2VIDEO}/x"),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_hot_route_answers_as_fastapi_does(
    env: Env, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken: list[str] = []
    real_send = hot._send

    async def counting_send(send: Any, status: int, body: bytes) -> None:
        taken.append(name)
        await real_send(send, status, body)

    monkeypatch.setattr(hot, "_send", counting_send)
    fast = await SCENARIOS[name](env)
    assert taken, "the request did not go through the hot routes"

    async def pass_through(self: HotRoutes, scope: Any, receive: Any, send: Any) -> None:
        await self._app(scope, receive, send)

    monkeypatch.setattr(HotRoutes, "__call__", pass_through)
    taken.clear()
    slow = await SCENARIOS[name](env)
    assert not taken
    assert _normal(fast) == _normal(slow)
    assert fast.headers["x-request-id"] == fast.json()["request_id"]


async def test_other_routes_and_methods_pass_through(env: Env) -> None:
    created = await env.create({"model_name": "kling-v1", "prompt": "x"})
    task_id = created.json()["data"]["task_id"]
    listed = await env.client.get(TEXT2VIDEO, headers=env.auth())
    assert listed.status_code == 200 and listed.json()["data"][0]["task_id"] == task_id
    quoted = await env.client.post(
        TEXT2VIDEO + "/quote", json={"model_name": "kling-v1", "prompt": "x"}, headers=env.auth()
    )
    assert quoted.status_code == 200 and "price" in quoted.json()["data"]
    deliveries = await env.client.get(f"{TEXT2VIDEO}/{task_id}/deliveries", headers=env.auth())
    assert deliveries.status_code == 200
    wrong = await env.client.put(f"{TEXT2VIDEO}/{task_id}", headers=env.auth())
    assert wrong.status_code == 404 and wrong.json()["code"] == 1202
