"""One JSON object per log line, redacted, with the request id of the request that caused it.

stdlib ``logging`` plus orjson rather than a logging library: every module already logs through
``logging.getLogger``, so a formatter is the one place to change, and it adds no dependency. JSON because
the lines are read by machines first (one request = one line with method, route template, status, latency,
request id and public task id; one task transition = one line with from/to), and grepping a request id
across access, transition and error lines is the common debugging move.

The formatter redacts (``redact.py``) and stamps ``request_id`` from the current request context when the
record has none, so a warning logged three layers below a route still names its request.
"""

from __future__ import annotations

import itertools
import logging
import sys
import time
from typing import IO, Any

import orjson

from .context import current_request_id
from .redact import redact, redact_fields, scrub_text

ACCESS_LOGGER = "kling_gateway.access"
TRANSITIONS_LOGGER = "kling_gateway.transitions"
# Third-party loggers that speak once per request or per start at INFO; kept to warnings. "alembic" as a
# whole: its plugin loader and its migration runner each print lines above the key a first start shows.
NOISY = ("httpx", "httpcore", "alembic", "aiosqlite", "asyncio")

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is logged as a field.
# ``extra`` lands after the attributes LogRecord.__init__ sets, so the scan starts past those.
_INIT_ATTRS = len(vars(logging.LogRecord("", 0, "", 0, "", (), None)))
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_DUMPS_OPTIONS = orjson.OPT_NON_STR_KEYS


_second: list[Any] = [-1, ""]  # the last formatted second: strftime costs more than the rest of a line


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
        # Arguments are redacted before interpolation: a dict argument loses its secret and prompt keys,
        # which pattern scrubbing of the finished string could not reliably find.
        msg = str(record.msg)
        args = record.args
        if args:
            try:
                safe = redact(args) if isinstance(args, dict) else tuple(redact(a) for a in args)
                msg = msg % safe
            except (TypeError, ValueError):
                msg = record.getMessage()
        return scrub_text(msg)


def configure_logging(level: int | str = logging.INFO, stream: IO[str] | None = None) -> logging.Handler:
    """Send every log record to ``stream`` (stderr) as redacted JSON lines; returns the handler.

    Replaces the root logger's handlers so the process has one format (uvicorn's own loggers propagate
    here when it is started with ``log_config=None``)."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # What the logging HOWTO's "Optimization" section lists: the JSON line uses none of the caller's file
    # and line, thread, process or multiprocessing names, and finding them is most of a record's cost.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler
