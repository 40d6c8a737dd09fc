"""One JSON object per log line, redacted, with the request id of the request that caused it.

stdlib ``logging`` plus orjson rather than a logging library: every module already logs through
``logging.getLogger``, so a formatter is the one place to change, and it adds no dependency. JSON
because the lines are read by machines first (one request = one line with method, route template,
status, latency, request id and public task id; one task transition = one line with from/to), and
grepping a request id across access, transition and error lines is the common debugging move.

The formatter redacts (``redact.py``) and stamps ``request_id`` from the current request context
when the record has none, so a warning logged three layers below a route still names its request.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

import orjson

from .context import current_request_id
from .redact import redact, redact_fields, scrub_text

ACCESS_LOGGER = "kling_gateway.access"
TRANSITIONS_LOGGER = "kling_gateway.transitions"
# Third-party loggers that speak once per request or per start at INFO; kept to
# warnings. "alembic" as a whole: its plugin loader and its migration runner each
# print lines above the key a first start shows.
NOISY = ("httpx", "httpcore", "alembic", "aiosqlite", "asyncio")

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and
# is logged as a field. ``extra`` lands after the attributes LogRecord.__init__ sets,
# so the scan starts past those.
_INIT_ATTRS = len(vars(logging.LogRecord("", 0, "", 0, "", (), None)))
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_DUMPS_OPTIONS = orjson.OPT_NON_STR_KEYS


# the last formatted second: strftime costs more than the rest of a line
_second: list[Any] = [-1, ""]


def _iso(created: float, msecs: float) -> str:
    second = int(created)
    if _second[0] != second:
        _second[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second[0] = second
    return f"{_second[1]}.{int(msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", …extra fields, "request_id"?, "exc"?}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": _iso(record.created, record.msecs),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": self._message(record),
        }
        extra = {
            k: v
            for k, v in itertools.islice(record.__dict__.items(), _INIT_ATTRS, None)
            if k not in _STANDARD
        }
        if extra:
            doc.update(redact_fields(extra))
        if "request_id" not in doc:
            rid = current_request_id()
            if rid:
                doc["request_id"] = rid
        if record.exc_info:
            doc["exc"] = scrub_text(self.formatException(record.exc_info))
        elif record.exc_text:
            doc["exc"] = scrub_text(record.exc_text)
        if record.stack_info:
            doc["stack"] = scrub_text(self.formatStack(record.stack_info))
        return orjson.dumps(doc, default=str, option=_DUMPS_OPTIONS).decode()

    @staticmethod
    def _message(record: logging.LogRecord) -> str:
        # Arguments are redacted before interpolation: a dict argument loses its secret and prompt
        # keys, which pattern scrubbing of the finished string could not reliably find.
        msg = str(record.msg)
        args = record.args
        if args:
            try:
                safe = redact(args) if isinstance(args, dict) else tuple(redact(a) for a in args)
                msg = msg % safe
            except (TypeError, ValueError):
                msg = record.getMessage()
        return scrub_text(msg)


class TurnBatchedHandler(logging.StreamHandler[IO[str]]):
    """A stream handler that writes the lines made in one turn of the event loop with one ``write``.

    Why: a ``write`` system call per JSON line was a large share of a request's CPU
    (docs/benchmarks.md). Lines made on the loop's thread wait for the end of the turn
    (``call_soon``), so a process killed outright loses at most the lines of the turn it was in.
    Lines from other threads, and every line while no loop is attached, are written at once, as a
    plain ``StreamHandler`` does (after any lines still waiting, which were made before them)."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__(stream)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._pending: list[str] = []

    def attach(self, loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
        """Batch the lines made on ``loop``'s thread (the caller's); returns the call
        that stops it."""
        with self.lock or contextlib.nullcontext():
            self._loop, self._loop_thread = loop, threading.get_ident()

        def detach() -> None:
            with self.lock or contextlib.nullcontext():
                self._loop = self._loop_thread = None
            self.flush()

        return detach

    def emit(self, record: logging.LogRecord) -> None:
        loop = self._loop  # logging.Handler.handle holds the handler's lock around emit
        if loop is None or threading.get_ident() != self._loop_thread:
            self.flush()  # lines still waiting for the turn's end were made first
            super().emit(record)
            return
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        pending = self._pending
        pending.append(line)
        if len(pending) == 1:
            try:
                loop.call_soon(self.flush)
            except RuntimeError:  # the loop is closed: nothing will run the flush
                self.flush()

    def flush(self) -> None:
        with self.lock or contextlib.nullcontext():
            lines = self._pending
            if lines:
                self._pending = []
                try:
                    self.stream.write(self.terminator.join(lines) + self.terminator)
                # as StreamHandler.emit: a broken stream must not break the caller
                except Exception:
                    sys.stderr.write(f"--- logging: {len(lines)} lines could not be written ---\n")
            super().flush()


def batch_on_loop(loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    """Let the root logger's ``TurnBatchedHandler`` (if any) batch lines made on ``loop``; returns
    the call that stops it and writes what is pending."""
    undo = [
        h.attach(loop) for h in logging.getLogger().handlers if isinstance(h, TurnBatchedHandler)
    ]

    def detach() -> None:
        for u in undo:
            u()

    return detach


def configure_logging(
    level: int | str = logging.INFO, stream: IO[str] | None = None
) -> logging.Handler:
    """Send every log record to ``stream`` (stderr) as redacted JSON lines; returns the handler.

    Replaces the root logger's handlers so the process has one format (uvicorn's own loggers
    propagate here when it is started with ``log_config=None``)."""
    handler = TurnBatchedHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # What the logging HOWTO's "Optimization" section lists: the JSON line uses none
    # of the caller's file and line, thread, process or multiprocessing names, and
    # finding them is most of a record's cost.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler
