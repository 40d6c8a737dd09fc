"""What every response crosses at the edge, on the raw ASGI channel: the body read under a size cap
and the Kling envelope. Both the FastAPI routes (envelope.py) and the hot routes (hot.py) use these,
so the two paths cannot drift apart."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from ..errors import BodyTooLarge, KlingError

_JSON_HEADER = (b"content-type", b"application/json")


def header(scope: Scope, name: bytes) -> str | None:
    """A header's first value, as Starlette's ``Headers.get`` gives it (names arrive lower-case)."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def request_id(scope: Scope) -> str:
    return str(scope.get("state", {}).get("request_id", ""))


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The declared length is refused early, then what arrives is counted (a length may be absent
    or lie)."""
    declared = header(scope, b"content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"request body is {declared} bytes; the limit is {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def ok_body(scope: Scope, data: Any) -> bytes:
    """Kling's success envelope around ``data``; a task id is noted for the access log line."""
    state = scope.setdefault("state", {})
    if isinstance(data, dict) and "task_id" in data:
        state["task_id"] = data["task_id"]
    body = {
        "code": 0,
        "message": "SUCCEED",
        "request_id": str(state.get("request_id", "")),
        "data": data,
    }
    return orjson.dumps(body)


def error_body(scope: Scope, exc: KlingError) -> bytes:
    return orjson.dumps(exc.to_body(request_id(scope)))


async def send_json(send: Send, status: int, body: bytes) -> None:
    # The headers Starlette's Response(media_type="application/json") sends, in its order.
    headers = [(b"content-length", str(len(body)).encode()), _JSON_HEADER]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
