"""KlingClient over httpx.MockTransport: request shape, failure classification, wire parsing."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest

from kling_gateway.errors import http_status_for
from kling_gateway.upstream.auth import Authorizer, Credentials
from kling_gateway.upstream.client import (
    TEXT2VIDEO_PATH,
    KlingClient,
    Outcome,
    UpstreamError,
    UpstreamTask,
    scrub,
)
from kling_gateway.upstream.transport import TransportError

BASE = "https://kling.test"
API_KEY = "upstream-api-key-0123456789abcdef"
TASK_ID = "871234567890123456"
EXT_ID = "gw-20260610-0001"

Handler = Callable[[httpx.Request], httpx.Response]

# kling-examples.json → query.succeed.body.data (copied: the suite reads nothing outside the repo).
SUCCEED_DATA: dict[str, Any] = {
    "task_id": TASK_ID,
    "task_status": "succeed",
    "task_status_msg": "",
    "task_info": {"external_task_id": EXT_ID},
    "created_at": 1781080000000,
    "updated_at": 1781080187000,
    "task_result": {
        "videos": [
            {
                "id": "3f0c9d2a-7e41-4b8e-9a55-2d1c6b7e8f90",
                "url": "https://cdn.klingai.com/bs2/upload-kling-api/5739745938/text2video/"
                "871234567890123456-0_raw_video_1.mp4",
                "duration": "5.1",
            }
        ]
    },
    "watermark_info": {"enabled": False},
    "final_unit_deduction": "2.5",
}
# kling-examples.json → create_response_ok.body.data
CREATED_DATA: dict[str, Any] = {
    "task_id": TASK_ID,
    "task_status": "submitted",
    "task_info": {"external_task_id": EXT_ID},
    "created_at": 1781080000000,
    "updated_at": 1781080000000,
}


def ok(data: Any) -> httpx.Response:
    return httpx.Response(
        200, json={"code": 0, "message": "SUCCEED", "request_id": "r", "data": data}
    )


def kling_error(code: int, message: str = "nope", status: int | None = None) -> httpx.Response:
    body = {"code": code, "message": message, "request_id": "r"}
    return httpx.Response(status if status is not None else http_status_for(code), json=body)


@asynccontextmanager
async def client_for(handler: Handler) -> AsyncIterator[KlingClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        yield KlingClient(http, BASE + "/", Authorizer(Credentials(api_key=API_KEY)))


async def create_error(handler: Handler) -> UpstreamError:
    async with client_for(handler) as kling:
        with pytest.raises(UpstreamError) as info:
            await kling.create({"model_name": "kling-v3", "prompt": "a cat"}, EXT_ID)
    return info.value


# --- requests


async def test_create_sends_external_id_and_authorization() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return ok(CREATED_DATA)

    body = {
        "model_name": "kling-v3",
        "prompt": "a cat",
        "duration": "5",
        "external_task_id": "caller-own",
    }
    original = copy.deepcopy(body)
    async with client_for(handler) as kling:
        task = await kling.create(body, EXT_ID)

    assert body == original  # the caller's dict is not mutated
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == BASE + TEXT2VIDEO_PATH
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert orjson.loads(request.content) == {**original, "external_task_id": EXT_ID}
    assert task == UpstreamTask(TASK_ID, "submitted", "", EXT_ID, 1781080000000, 1781080000000)


async def test_get_and_list_paths() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        assert request.method == "GET"
        assert request.headers["Authorization"] == f"Bearer {API_KEY}"
        if request.url.path == TEXT2VIDEO_PATH:
            return ok([SUCCEED_DATA, {**CREATED_DATA, "task_id": "871234567890123999"}])
        return ok(SUCCEED_DATA)

    async with client_for(handler) as kling:
        task = await kling.get(TASK_ID)
        tasks = await kling.list(page=2, size=50)
    assert task.status == "succeed"
    assert [t.task_id for t in tasks] == [TASK_ID, "871234567890123999"]
    assert seen == [
        f"{BASE}{TEXT2VIDEO_PATH}/{TASK_ID}",
        f"{BASE}{TEXT2VIDEO_PATH}?pageNum=2&pageSize=50",
    ]


@pytest.mark.parametrize("data", [None, {}, {"items": []}, "x"])
async def test_list_with_non_array_data_is_empty(data: Any) -> None:
    async with client_for(lambda _: ok(data)) as kling:
        assert await kling.list() == []


@pytest.mark.parametrize("status", [200, 400, 429])
async def test_non_zero_code_is_an_error_even_with_http_200(status: int) -> None:
    err = await create_error(
        lambda _: kling_error(1303, "parallel task over resource pack limit", status)
    )
    assert (err.code, err.http_status, err.outcome) == (1303, status, Outcome.ABSENT)
    assert err.message == "parallel task over resource pack limit"


@pytest.mark.parametrize("data", [None, {}, {"task_status": "submitted"}, [CREATED_DATA]])
async def test_create_success_without_task_id_is_ambiguous(data: Any) -> None:
    err = await create_error(lambda _: ok(data))
    assert (err.outcome, err.code) == (Outcome.AMBIGUOUS, 5000)


async def test_get_success_without_task_is_ambiguous() -> None:
    async with client_for(lambda _: ok(None)) as kling:
        with pytest.raises(UpstreamError) as info:
            await kling.get(TASK_ID)
    assert info.value.outcome is Outcome.AMBIGUOUS


# --- classification


def raising(exc_type: type[httpx.TransportError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type("simulated", request=request)

    return handler


@pytest.mark.parametrize(
    ("exc_type", "outcome", "code"),
    [
        (httpx.ConnectError, Outcome.ABSENT, 5001),
        (httpx.ConnectTimeout, Outcome.ABSENT, 5001),
        (httpx.PoolTimeout, Outcome.ABSENT, 5001),
        (httpx.ReadTimeout, Outcome.AMBIGUOUS, 5002),
        (httpx.WriteTimeout, Outcome.AMBIGUOUS, 5002),
        (httpx.ReadError, Outcome.AMBIGUOUS, 5002),
        (httpx.WriteError, Outcome.AMBIGUOUS, 5002),
        (httpx.RemoteProtocolError, Outcome.AMBIGUOUS, 5002),
    ],
)
async def test_transport_errors(
    exc_type: type[httpx.TransportError], outcome: Outcome, code: int
) -> None:
    err = await create_error(raising(exc_type))
    assert (err.outcome, err.code, err.http_status) == (outcome, code, 0)
    assert exc_type.__name__ in err.message
    assert isinstance(err.__cause__, TransportError)
    assert isinstance(err.__cause__.__cause__, exc_type)


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (1000, Outcome.ABSENT),
        (1002, Outcome.ABSENT),
        (1004, Outcome.ABSENT),
        (1102, Outcome.ABSENT),
        (1103, Outcome.ABSENT),
        (1201, Outcome.ABSENT),
        (1203, Outcome.ABSENT),
        (1301, Outcome.ABSENT),
        (1302, Outcome.ABSENT),
        (1303, Outcome.ABSENT),
        (1304, Outcome.ABSENT),
        (5001, Outcome.ABSENT),
        (5000, Outcome.AMBIGUOUS),
        (5002, Outcome.AMBIGUOUS),
        (5003, Outcome.AMBIGUOUS),  # an unknown 5xxx may have created the task
        (9999, Outcome.AMBIGUOUS),
    ],
)
async def test_kling_codes(code: int, outcome: Outcome) -> None:
    err = await create_error(lambda _: kling_error(code))
    assert (err.code, err.outcome, err.http_status) == (code, outcome, http_status_for(code))


@pytest.mark.parametrize(
    ("status", "content", "outcome", "code"),
    [
        (502, b"<html>Bad Gateway</html>", Outcome.AMBIGUOUS, 5000),
        (503, b"", Outcome.AMBIGUOUS, 5000),
        (500, b'{"error": "boom"}', Outcome.AMBIGUOUS, 5000),  # JSON, but not a Kling envelope
        (200, b"not json", Outcome.AMBIGUOUS, 5000),
        (200, b'{"code": "0"}', Outcome.AMBIGUOUS, 5000),
        (404, b"<html>Not Found</html>", Outcome.ABSENT, 1203),
        (404, b'{"detail": "Not Found"}', Outcome.ABSENT, 1203),
        (400, b"bad request", Outcome.ABSENT, 1200),
        (413, b"too large", Outcome.ABSENT, 1200),
    ],
)
async def test_non_kling_bodies(status: int, content: bytes, outcome: Outcome, code: int) -> None:
    err = await create_error(lambda _: httpx.Response(status, content=content))
    assert (err.outcome, err.code, err.http_status) == (outcome, code, status)
    assert f"HTTP {status}" in err.message


# --- find_by_external_id


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(404, content=b"Not Found"),
        kling_error(1203, "task not found"),
        kling_error(1203, "task not found", status=200),
        kling_error(1202, "no such path", status=404),
    ],
)
async def test_find_by_external_id_none_when_kling_confirms_absence(
    response: httpx.Response,
) -> None:
    async with client_for(lambda _: response) as kling:
        assert await kling.find_by_external_id(EXT_ID) is None


@pytest.mark.parametrize(
    "handler",
    [
        lambda _: kling_error(5000),
        lambda _: kling_error(5001),
        lambda _: kling_error(1201, "bad id"),
        lambda _: kling_error(1002),
        lambda _: kling_error(1302),
        lambda _: httpx.Response(502, content=b"bad gateway"),
        lambda _: ok(None),
        raising(httpx.ConnectError),
        raising(httpx.ReadTimeout),
    ],
)
async def test_find_by_external_id_raises_on_other_errors(handler: Handler) -> None:
    async with client_for(handler) as kling:
        with pytest.raises(UpstreamError):
            await kling.find_by_external_id(EXT_ID)


async def test_find_by_external_id_returns_task() -> None:
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        return ok(SUCCEED_DATA)

    async with client_for(handler) as kling:
        task = await kling.find_by_external_id(EXT_ID)
    assert task is not None and task.external_task_id == EXT_ID
    assert paths == [f"{TEXT2VIDEO_PATH}/{EXT_ID}"]


@pytest.mark.parametrize(
    ("code", "http_status", "not_found"),
    [(1203, 404, True), (1203, 400, True), (0, 404, True), (1202, 404, True), (1202, 400, False),
     (1201, 404, False), (5000, 404, False), (1200, 400, False)],
)  # fmt: skip
def test_not_found_property(code: int, http_status: int, not_found: bool) -> None:
    assert UpstreamError(Outcome.ABSENT, code, "m", http_status).not_found is not_found


# --- scrub


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (f"task {TASK_ID} not found", "task [id] not found"),
        (f"id={TASK_ID}.", "id=[id]."),
        (f"任务ID：{TASK_ID}", "任务ID：[id]"),
        ("token eyJhbGciOiJIUzI1NiJ9abcdef1234 bad", "token [id] bad"),
        ("video 3f0c9d2a-7e41-4b8e-9a55-2d1c6b7e8f90 gone", "video [id] gone"),
        ("Account balance not enough", "Account balance not enough"),
        ("short 12345678901 and gw-20260610-0001", "short 12345678901 and gw-20260610-0001"),
        ("", ""),
    ],
)
def test_scrub(message: str, expected: str) -> None:
    assert scrub(message) == expected


def test_scrub_truncates() -> None:
    assert len(scrub("word " * 200)) == 300


async def test_upstream_messages_are_scrubbed() -> None:
    err = await create_error(
        lambda _: kling_error(1201, f"duplicate external id for task {TASK_ID}")
    )
    assert TASK_ID not in err.message and TASK_ID not in str(err)
    assert err.message == "duplicate external id for task [id]"


def test_scrub_id_inside_chinese_text() -> None:
    assert TASK_ID not in scrub(f"任务{TASK_ID}不存在")


# --- from_wire


def test_from_wire_succeed_example() -> None:
    task = UpstreamTask.from_wire(SUCCEED_DATA)
    assert task.task_id == TASK_ID
    assert task.status == "succeed"
    assert task.status_msg == ""
    assert task.external_task_id == EXT_ID
    assert (task.created_at, task.updated_at) == (1781080000000, 1781080187000)
    assert task.videos == SUCCEED_DATA["task_result"]["videos"]
    assert task.unit_deduction == "2.5"


@pytest.mark.parametrize(
    ("changes", "field", "expected"),
    [
        ({"task_info": {}}, "external_task_id", None),
        ({"task_info": None}, "external_task_id", None),
        ({"task_info": "x"}, "external_task_id", None),
        ({"task_result": None}, "videos", []),
        ({"task_result": {}}, "videos", []),
        ({"task_result": {"videos": None}}, "videos", []),
        ({"task_result": {"videos": "x"}}, "videos", []),
        ({"task_result": {"videos": [{"id": "v"}, "junk", 3]}}, "videos", [{"id": "v"}]),
        ({"task_result": []}, "videos", []),
        ({"final_unit_deduction": None}, "unit_deduction", None),
        ({"final_unit_deduction": 2.5}, "unit_deduction", "2.5"),
        ({"task_status_msg": None}, "status_msg", ""),
        ({"created_at": None}, "created_at", 0),
        ({"task_id": 871234567890123456}, "task_id", TASK_ID),
    ],
)
def test_from_wire_tolerates_sparse_fields(
    changes: dict[str, Any], field: str, expected: Any
) -> None:
    assert getattr(UpstreamTask.from_wire({**SUCCEED_DATA, **changes}), field) == expected


@pytest.mark.parametrize(
    "missing", ["task_info", "task_result", "task_status_msg", "created_at", "final_unit_deduction"]
)
def test_from_wire_without_optional_key(missing: str) -> None:
    data = {k: v for k, v in SUCCEED_DATA.items() if k != missing}
    task = UpstreamTask.from_wire(data)
    assert task.task_id == TASK_ID


def test_from_wire_minimal_and_missing_task_id() -> None:
    assert UpstreamTask.from_wire({"task_id": "1"}) == UpstreamTask("1", "", "", None, 0, 0)
    with pytest.raises(KeyError):
        UpstreamTask.from_wire({"task_status": "succeed"})
