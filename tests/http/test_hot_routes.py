"""The bare-ASGI create/get routes (http/hot.py) answer exactly as the FastAPI routes they replace.

Each scenario runs twice in one gateway: once through ``HotRoutes`` and once with it switched to
pass everything on to FastAPI; status, headers and body must match (request ids and minted task ids
aside).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from kling_gateway.http import edge, hot
from kling_gateway.http.hot import HotRoutes
from kling_gateway.services import reads
from kling_gateway.services.tasks import Creation
from tests.conftest import TEXT2VIDEO, Env

Scenario = Callable[[Env], Awaitable[httpx.Response]]
_VOLATILE = ("request_id", "task_id", "created_at", "updated_at")


def _normal(resp: httpx.Response) -> tuple[int, list[tuple[str, str]], Any]:
    headers = [
        (k, v) for k, v in resp.headers.items() if k not in ("x-request-id", "content-length")
    ]
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
    "create": _post(
        b'{"model_name": "kling-v1", "prompt": "a fox"}', **{"content-type": "application/json"}
    ),
    "create on /v1": lambda env: env.client.post(
        "/v1/videos/text2video", json={"model_name": "kling-v1", "prompt": "x"}, headers=env.auth()
    ),
    "bad json": _post(b"{not json"),
    "empty body": _post(b""),
    "not an object": _post(b"[1]"),
    "unknown model": _post(b'{"model_name": "nope", "prompt": "x"}'),
    "too large": _post(b'{"prompt": "' + b"x" * 2_000_000 + b'"}'),
    "no auth": lambda env: env.client.post(
        TEXT2VIDEO, json={"model_name": "kling-v1", "prompt": "x"}
    ),
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
    real_send = edge.send_json  # what hot.py imports and calls

    async def counting_send(send: Any, status: int, body: bytes) -> None:
        taken.append(name)
        await real_send(send, status, body)

    monkeypatch.setattr(hot, "send_json", counting_send)
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
    assert wrong.status_code == 405 and wrong.json()["code"] == 1202


@pytest.mark.parametrize("route", ["create", "get"])
async def test_an_unexpected_error_is_answered_as_fastapi_answers_it(
    env: Env, route: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug below a hot route: logged with its request id, answered 500/5000 in the envelope, and
    raised on to the server — the same answer FastAPI's error handler gives when the hot routes pass
    it on."""

    async def broken(*args: Any) -> Any:
        raise RuntimeError("a bug")

    # what hot.py calls
    monkeypatch.setattr(Creation if route == "create" else reads, route, broken)

    async def call(client: httpx.AsyncClient) -> httpx.Response:
        if route == "create":
            return await client.post(
                TEXT2VIDEO, json={"model_name": "kling-v1", "prompt": "x"}, headers=env.auth()
            )
        return await client.get(f"{TEXT2VIDEO}/some-task", headers=env.auth())

    transport = httpx.ASGITransport(app=env.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        fast = await call(client)
        with pytest.raises(RuntimeError, match="a bug"):
            await call(env.client)  # the exception goes on to the server after the answer
        logged = [r for r in caplog.records if r.getMessage().startswith("unhandled error")]
        assert logged and getattr(logged[0], "request_id", None) == fast.headers["x-request-id"]

        async def pass_through(self: HotRoutes, scope: Any, receive: Any, send: Any) -> None:
            await self._app(scope, receive, send)

        monkeypatch.setattr(HotRoutes, "__call__", pass_through)
        slow = await call(client)
    assert fast.status_code == 500 and fast.json()["code"] == 5000
    assert _normal(fast) == _normal(slow)
    assert fast.json()["request_id"] == fast.headers["x-request-id"]
    assert (
        slow.json()["request_id"] == slow.headers["x-request-id"]
    )  # FastAPI's 500s carry the header now
