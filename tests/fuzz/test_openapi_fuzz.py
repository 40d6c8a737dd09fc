"""Schemathesis against our OpenAPI: every Kling route, valid and invalid inputs, via the real app.

Properties, for every generated request: no 5xx; the answer conforms to the document (its status is
declared for the operation, its content type too, and its body matches the declared schema:
schemathesis' own checks); a JSON answer is exactly a Kling envelope
``{code, message, request_id, data}`` whose ``code`` is 0 exactly when the status is 200;
``request_id`` equals the ``X-Request-Id`` header. Schemathesis is used as a generator only
(``as_strategy``); requests go through the ``env`` fixture's in-process client, so the app runs its
real lifespan against the simulator once per operation, and each example costs a few milliseconds.
Bounded by ``max_examples`` so the file stays well under a minute in CI; a failure prints the
reproducing example.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Required, TypedDict

import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.core.result import Err, Ok
from schemathesis.errors import InvalidSchema
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from kling_gateway.http.app import create_app
from tests.conftest import TEXT2VIDEO, Env, make_settings
from tests.fuzz.strategies import valid_leaning

MAX_EXAMPLES = 50
Operation = APIOperation[Any, Any, Any, Any]


def parsed(result: Ok[Operation] | Err[InvalidSchema]) -> Operation:
    if isinstance(result, Err):
        raise result.err()  # our own document: every operation must parse
    return result.ok()


class RequestArgs(TypedDict, total=False):
    """The keywords for httpx's ``request``: always a method, URL and headers; the rest per case."""

    method: Required[str]
    url: Required[str]
    headers: Required[dict[str, str]]
    params: dict[str, Any]
    content: bytes | str


SPEC = create_app(
    make_settings(Path("unused")), run_poller=False
).openapi()  # no lifespan: schema only
SCHEMA = schemathesis.openapi.from_dict(SPEC)
OPERATIONS = {
    f"{op.method.upper()} {op.path}": op
    for op in map(parsed, SCHEMA.get_all_operations())
    if op.path.startswith(("/kling/", "/account/"))
}
CONFORMANCE = [status_code_conformance, content_type_conformance, response_schema_conformance]
RESULTS_ROUTE = "GET /kling/v1/results/{task_id}/{name}.mp4"
ENVELOPE_KEYS = {"code", "message", "request_id", "data"}
# Headers worth keeping from schemathesis' request; the rest (User-Agent, keep-alive…) are its own.
KEEP_HEADERS = {"content-type"}


FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one app per test, shared by its examples: intended
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


def test_the_kling_routes_are_all_in_the_schema() -> None:
    assert {
        "POST /kling/v1/videos/text2video",
        "GET /kling/v1/videos/text2video",
        "GET /kling/v1/videos/text2video/{task_id}",
        "GET /account/costs",
    } <= set(OPERATIONS)


def request_args(case: Case[Operation], env: Env, auth: str) -> RequestArgs:
    kw = case.as_transport_kwargs(base_url="http://gw")
    headers = {k: str(v) for k, v in kw.get("headers", {}).items() if k.lower() in KEEP_HEADERS}
    if auth == "key":
        headers.update(env.auth("alice"))
    elif auth == "garbage":
        headers["Authorization"] = "Bearer not-a-key"
    args: RequestArgs = {"method": kw["method"], "url": kw["url"], "headers": headers}
    if kw.get("params"):
        args["params"] = kw["params"]
    if "json" in kw:
        # stdlib json, as a client would: it writes what orjson refuses (integers past 64 bits).
        args["content"] = json.dumps(kw["json"]).encode()
    elif kw.get("data") is not None:
        data = kw["data"]
        args["content"] = data if isinstance(data, bytes) else str(data).encode()
    return args


def check(label: str, args: RequestArgs, status: int, headers: Any, content: bytes) -> None:
    where = f"{label}: {args['method']} {args['url']} -> {status} {content[:300]!r}"
    assert status < 500, where
    rid = headers.get("x-request-id")
    assert rid, where
    if label == RESULTS_ROUTE and status in (200, 302):
        return  # a video or a redirect to it, not an envelope
    assert headers.get("content-type") == "application/json", where
    body = orjson.loads(content)
    assert isinstance(body, dict) and set(body) == ENVELOPE_KEYS, where
    assert isinstance(body["code"], int) and isinstance(body["message"], str), where
    assert body["request_id"] == rid, where
    assert (body["code"] == 0) == (status == 200), where
    if body["code"] != 0:
        assert body["data"] is None, where


@pytest.mark.parametrize("label", sorted(OPERATIONS))
@FUZZ
@given(data=st.data())
async def test_kling_routes_answer_kling_envelopes(
    env: Env, label: str, data: st.DataObject
) -> None:
    op = OPERATIONS[label]
    mode = data.draw(
        st.sampled_from([GenerationMode.POSITIVE, GenerationMode.NEGATIVE]), label="mode"
    )
    case = data.draw(op.as_strategy(generation_mode=mode), label="case")
    auth = data.draw(st.sampled_from(["key", "key", "key", "none", "garbage"]), label="auth")
    args = request_args(case, env, auth)
    resp = await env.client.request(**args)
    check(label, args, resp.status_code, resp.headers, resp.content)
    case.validate_response(resp, checks=CONFORMANCE)


@FUZZ
@given(drawn=valid_leaning())
async def test_creates_that_pass_validation_go_all_the_way_through(
    env: Env, drawn: tuple[str, Any]
) -> None:
    """Schemathesis' bodies rarely pass validation, so these reach the DB insert and the upstream
    call with plausible but odd values (unicode external ids, callback URLs, cfg_scale edges)."""
    _, body = drawn
    args: RequestArgs = {
        "method": "POST",
        "url": TEXT2VIDEO,
        "headers": env.auth("alice"),
        "content": json.dumps(body),
    }
    resp = await env.client.request(**args)
    check("POST " + TEXT2VIDEO, args, resp.status_code, resp.headers, resp.content)
    if resp.status_code == 200:
        task_id = resp.json()["data"]["task_id"]
        got = await env.get(task_id)
        assert got.status_code == 200 and got.json()["data"]["task_id"] == task_id
