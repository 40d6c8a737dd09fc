"""JSON log lines: one per request and per task transition, tied by request id, redacted."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from kling_gateway.observability.context import CURRENT, RequestContext
from kling_gateway.observability.logs import NOISY, JsonFormatter, configure_logging
from kling_gateway.observability.redact import REDACTED, redact, scrub_text
from tests.conftest import TEXT2VIDEO, Env

BODY = {"model_name": "kling-v1", "prompt": "my very private prompt"}
GLOBAL_FLAGS = ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing")


class Lines:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    def all(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.stream.getvalue().splitlines()]

    def of(self, logger: str) -> list[dict[str, Any]]:
        return [line for line in self.all() if line["logger"] == logger]


@pytest.fixture
def lines() -> Iterator[Lines]:
    """The gateway's loggers at INFO into a JSON handler, as ``kling-gateway serve`` runs them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("kling_gateway")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield Lines(stream)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def fmt(msg: str, *args: Any, exc: BaseException | None = None, **extra: Any) -> dict[str, Any]:
    record = logging.LogRecord(
        "kling_gateway.test", logging.WARNING, __file__, 1, msg, args or None, None
    )
    if exc is not None:
        record.exc_info = (type(exc), exc, exc.__traceback__)
    record.__dict__.update(extra)
    out: dict[str, Any] = orjson.loads(JsonFormatter().format(record))
    return out


async def test_one_access_line_per_request_and_transition_lines_share_its_request_id(
    env: Env, lines: Lines
) -> None:
    resp = await env.create(BODY)
    rid = resp.headers["x-request-id"]
    task_id = resp.json()["data"]["task_id"]
    await env.get(task_id)

    access = lines.of("kling_gateway.access")
    assert len(access) == 2
    create, get = access
    assert create["msg"] == "request"
    assert {k: create[k] for k in ("method", "route", "status", "request_id", "task_id")} == {
        "method": "POST",
        "route": TEXT2VIDEO,
        "status": 200,
        "request_id": rid,
        "task_id": task_id,
    }
    assert isinstance(create["latency_ms"], float) and create["latency_ms"] > 0
    # the create called Kling once, inside the request: its wait is part of the total, shown apart
    assert 0 < create["upstream_ms"] <= create["latency_ms"]
    assert "upstream_ms" not in get  # a read of our own row calls nobody
    assert create["ts"].endswith("Z") and create["level"] == "info"
    assert get["route"] == TEXT2VIDEO + "/{task_id}" and get["task_id"] == task_id
    assert get["request_id"] != rid

    [moved] = lines.of("kling_gateway.transitions")
    assert moved == {
        **moved,
        "task_id": task_id,
        "from": "queued",
        "to": "submitted",
        "request_id": rid,
    }
    assert "my very private prompt" not in lines.stream.getvalue()


async def test_transitions_made_by_the_refresher_carry_no_request_id(
    env: Env, lines: Lines
) -> None:
    task_id = (await env.create(BODY)).json()["data"]["task_id"]
    await env.run_until_idle(10)
    moves = [m for m in lines.of("kling_gateway.transitions") if m["from"] != "queued"]
    assert [m["to"] for m in moves][-1] == "succeed"
    assert all(m["task_id"] == task_id and "request_id" not in m for m in moves)


async def test_errors_are_logged_with_status_and_no_task_id(env: Env, lines: Lines) -> None:
    resp = await env.client.post(
        TEXT2VIDEO, json=BODY, headers={"Authorization": "Bearer sk-wrongwrongwrong"}
    )
    assert resp.status_code == 401
    [line] = lines.of("kling_gateway.access")
    assert line["status"] == 401 and "task_id" not in line
    assert line["request_id"] == resp.headers["x-request-id"]
    assert "sk-wrongwrongwrong" not in lines.stream.getvalue()


def test_structured_fields_lose_credentials_and_prompts() -> None:
    line = fmt(
        "upstream said %s",
        {"authorization": "Bearer abc.def", "prompt": "a secret plan", "n": 3},
        headers={"Authorization": "Bearer sk-abcdefghijkl", "Content-Type": "application/json"},
        body={
            "prompt": "a cat",
            "negative_prompt": "dogs",
            "multi_prompt": [{"index": 1, "prompt": "shot one", "duration": "5"}],
            "callback_url": "https://hooks.example/cb?token=s3cr3t&pageNum=2",
            "duration": "5",
        },
        api_key="sk-live-123456789",
        secret_key="kling-sk",
        access_key="kling-ak",
    )
    dumped = orjson.dumps(line).decode()
    for secret in (
        "abc.def",
        "a secret plan",
        "sk-abcdefghijkl",
        "a cat",
        "dogs",
        "shot one",
        "s3cr3t",
        "sk-live-123456789",
        "kling-sk",
        "kling-ak",
    ):
        assert secret not in dumped, secret
    assert line["headers"] == {"Authorization": REDACTED, "Content-Type": "application/json"}
    assert line["body"]["callback_url"] == f"https://hooks.example/cb?token={REDACTED}&pageNum=2"
    assert line["body"]["duration"] == "5" and line["body"]["multi_prompt"] == REDACTED
    assert "'n': 3" in line["msg"]


@pytest.mark.parametrize(
    ("raw", "gone"),
    [
        ("calling https://user:pa55@api.example/v1?sig=abc123&exp=99", ["pa55", "abc123"]),
        (
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJhayJ9.c2lnbmF0dXJl",
            ["eyJhbGci", "c2lnbmF0"],
        ),
        ("token=tok-1 and api_key: k-2, password=hunter2", ["tok-1", "k-2", "hunter2"]),
        (
            'body {"model_name": "kling-v1", "prompt": "hello \\"world\\"", "mode": "std"}',
            ["hello"],
        ),
        ("body {'negative_prompt': 'blurry faces', 'mode': 'pro'}", ["blurry faces"]),
        ("key sk-AbCdEf123456_-x revoked", ["AbCdEf123456"]),
    ],
)
def test_free_text_is_scrubbed(raw: str, gone: list[str]) -> None:
    out = scrub_text(raw)
    assert REDACTED in out
    for secret in gone:
        assert secret not in out
    assert fmt(raw)["msg"] == out


def test_harmless_text_is_left_alone() -> None:
    for raw in (
        "task 812345678901234567 moved to succeed",
        "pageNum=2&pageSize=30",
        "key 5 revoked",
    ):
        assert scrub_text(raw) == raw
    assert scrub_text("https://x.example/r?exp=10") == "https://x.example/r?exp=10"
    assert redact({"key_id": 5, "task_id": "1"}) == {"key_id": 5, "task_id": "1"}


def test_tracebacks_are_scrubbed_and_request_id_comes_from_the_context() -> None:
    try:
        raise RuntimeError("POST https://hooks.example/cb?token=leaky failed")
    except RuntimeError as exc:
        error = exc
    token = CURRENT.set(RequestContext({"state": {"request_id": "rid-1"}}))
    try:
        line = fmt("delivery failed", exc=error)
    finally:
        CURRENT.reset(token)
    assert "leaky" not in line["exc"] and "RuntimeError" in line["exc"]
    assert line["request_id"] == "rid-1"
    assert "request_id" not in fmt("outside any request")


def test_configure_logging_replaces_root_handlers() -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    noisy = {name: logging.getLogger(name).level for name in NOISY}
    flags = {name: getattr(logging, name) for name in GLOBAL_FLAGS}
    stream = io.StringIO()
    try:
        configure_logging(logging.INFO, stream)
        assert root.handlers == [root.handlers[0]]
        logging.getLogger("kling_gateway.x").info(
            "hello %s", "world", extra={"authorization": "Basic Zm9v"}
        )
        logging.getLogger("httpx").info("noise")
        for name in ("alembic.runtime.plugins", "alembic.runtime.migration"):
            logging.getLogger(name).info("noise")
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in noisy.items():
            logging.getLogger(name).setLevel(level)
        for name, value in flags.items():
            setattr(logging, name, value)
    [line] = [orjson.loads(x) for x in stream.getvalue().splitlines()]
    assert line["msg"] == "hello world" and line["authorization"] == REDACTED
