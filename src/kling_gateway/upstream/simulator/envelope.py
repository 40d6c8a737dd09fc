"""Kling's response envelope and the one exception every simulator failure travels as.

Bodies are serialised with orjson straight into a plain Response: the simulator is a benchmark
baseline, so it must not pay for JSONResponse's stdlib json or any model layer.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import orjson
from starlette.responses import Response

from kling_gateway.errors import http_status_for

JSON = "application/json"

MESSAGES = {
    1302: "Too many requests; rate limit exceeded",
    1303: "parallel task over resource pack limit",
    5000: "Server internal error",
    5001: "Server temporarily unavailable",
    5002: "Server internal timeout",
}


# Request ids look like live ones (UUIDv4 text) but come from a per-process random prefix plus a
# counter: uuid4() costs more than the rest of a small response put together.
_ID_PREFIX = str(uuid.uuid4())[:24]
_id_counter = itertools.count(1)


def request_id() -> str:
    return f"{_ID_PREFIX}{next(_id_counter) & 0xFFFFFFFFFFFF:012x}"


class SimFailure(Exception):
    def __init__(self, code: int, message: str | None = None) -> None:
        text = message if message is not None else MESSAGES.get(code, "request failed")
        super().__init__(text)
        self.code = code
        self.message = text


def ok(data: Any) -> Response:
    body = {"code": 0, "message": "SUCCEED", "request_id": request_id(), "data": data}
    return Response(orjson.dumps(body), media_type=JSON)


def fail(failure: SimFailure) -> Response:
    body: dict[str, Any] = {
        "code": failure.code,
        "message": failure.message,
        "request_id": request_id(),
    }
    # The official 1303 sample has no "data" key; other errors in the wild carry "data": null.
    if failure.code != 1303:
        body["data"] = None
    return Response(orjson.dumps(body), status_code=http_status_for(failure.code), media_type=JSON)
