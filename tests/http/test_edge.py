"""The edge primitives both the FastAPI routes and the hot routes use (http/edge.py)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from starlette.requests import ClientDisconnect

from kling_gateway.errors import BodyTooLarge, KlingError
from kling_gateway.http import edge, envelope, hot


def _channel(*messages: dict[str, Any]) -> Any:
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    return receive


def _scope(length: str | None = None) -> dict[str, Any]:
    headers = [(b"content-length", length.encode())] if length is not None else []
    return {"type": "http", "headers": headers, "state": {"request_id": "rid"}}


async def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    with pytest.raises(BodyTooLarge, match="is 11 bytes"):
        await edge.read_body(_scope("11"), _channel(), 10)


async def test_the_body_is_counted_as_it_arrives() -> None:
    parts = ({"type": "http.request", "body": b"x" * 6, "more_body": True},) * 2
    with pytest.raises(BodyTooLarge, match="exceeds"):
        await edge.read_body(_scope(), _channel(*parts), 10)
    ok = (
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.request", "body": b"c"},
    )
    assert await edge.read_body(_scope("3"), _channel(*ok), 10) == b"abc"


async def test_a_client_gone_mid_body_is_a_disconnect() -> None:
    with pytest.raises(ClientDisconnect):
        await edge.read_body(_scope(), _channel({"type": "http.disconnect"}), 10)


def test_the_envelopes_carry_the_request_id_and_note_the_task() -> None:
    scope = _scope()
    assert orjson.loads(edge.ok_body(scope, {"task_id": "7"})) == {
        "code": 0,
        "message": "SUCCEED",
        "request_id": "rid",
        "data": {"task_id": "7"},
    }
    assert scope["state"]["task_id"] == "7"  # for the access log line
    body = orjson.loads(edge.error_body(scope, KlingError("no", code=1200)))
    assert body["code"] == 1200 and body["request_id"] == "rid"


def test_both_paths_use_the_one_copy() -> None:
    assert vars(hot)["read_body"] is edge.read_body
    assert not hasattr(hot, "_read_body") and not hasattr(hot, "_send")
    assert vars(envelope)["edge"] is edge
