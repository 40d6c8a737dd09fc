"""Request ids: UUID-shaped like Kling's, unique per request and per app (one app per worker)."""

from __future__ import annotations

import re
import uuid

from kling_gateway.http.envelope import request_ids
from tests.conftest import Env

_SHAPE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def test_ids_are_uuid_shaped_and_never_repeat() -> None:
    mint = request_ids()
    ids = [mint() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    for rid in ids[:50]:
        assert _SHAPE.match(rid), rid
        uuid.UUID(rid)  # parses as a UUID, for clients that parse Kling's request ids


def test_each_app_draws_its_own_prefix() -> None:
    a, b = request_ids(), request_ids()
    assert a()[:23] != b()[:23]


async def test_every_response_carries_a_fresh_id(env: Env) -> None:
    seen = set()
    for _ in range(5):
        resp = await env.client.get("/kling/v1/videos/text2video/nope", headers=env.auth())
        assert resp.status_code == 404
        rid = resp.headers["x-request-id"]
        assert resp.json()["request_id"] == rid and _SHAPE.match(rid)
        seen.add(rid)
    assert len(seen) == 5
