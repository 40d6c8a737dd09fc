"""The refusal table, row by row: what each upstream code or transport outcome proves, whose fault
it is, whether it passes, and what the client sees."""

from __future__ import annotations

import pytest

from kling_gateway.domain.refusals import Fault, bare_http_code, refusal, transport_code
from kling_gateway.errors import (
    ConcurrencyLimited,
    InvalidParameter,
    KlingError,
    PermissionDenied,
    RateLimited,
    UpstreamFailure,
)

_DOWN = (UpstreamFailure, 5001, 503, "upstream temporarily unavailable")
_BAD = (InvalidParameter, 1201, 400, "upstream rejected the request: m")
_NO_MODEL = (InvalidParameter, 1201, 400, "model_name: the model is not available upstream")
_NO_PERMISSION = (PermissionDenied, 1103, 403, "upstream account may not use this model")
_RATE = (RateLimited, 1302, 429, "Too many requests; upstream rate limit exceeded")
_PARALLEL = (ConcurrencyLimited, 1303, 429, "parallel task over resource pack limit")

A, U = True, False  # proves no task exists / may hide one

# code, absent, fault, transient, duplicate, (error class, client code, HTTP status, message)
ROWS = [
    (1000, A, Fault.KEY, False, False, _DOWN),
    (1001, A, Fault.KEY, False, False, _DOWN),
    (1002, A, Fault.KEY, False, False, _DOWN),
    (1003, A, Fault.KEY, False, False, _DOWN),
    (1004, A, Fault.KEY, False, False, _DOWN),
    (1005, A, Fault.REQUEST, False, False, _DOWN),
    (1099, A, Fault.REQUEST, False, False, _DOWN),
    (1100, A, Fault.ACCOUNT, False, False, _DOWN),
    (1101, A, Fault.ACCOUNT, False, False, _DOWN),
    (1102, A, Fault.ACCOUNT, False, False, _DOWN),
    (1103, A, Fault.ACCOUNT, False, False, _NO_PERMISSION),
    (1104, A, Fault.REQUEST, False, False, _DOWN),
    (1200, A, Fault.REQUEST, False, False, _BAD),
    (1201, A, Fault.REQUEST, False, True, _BAD),
    (1202, A, Fault.REQUEST, False, False, _NO_MODEL),
    (1203, A, Fault.REQUEST, False, False, _NO_MODEL),
    (1204, A, Fault.REQUEST, False, False, _DOWN),
    (1300, A, Fault.REQUEST, False, False, (KlingError, 1300, 400, "m")),
    (1301, A, Fault.REQUEST, False, False, (KlingError, 1301, 400, "m")),
    (1302, A, Fault.BUSY, True, False, _RATE),
    (1303, A, Fault.BUSY, True, False, _PARALLEL),
    (1304, A, Fault.ACCOUNT, False, False, _DOWN),
    (1399, A, Fault.REQUEST, False, False, _DOWN),
    (5001, A, Fault.UNREACHABLE, True, False, _DOWN),  # also: nothing was sent
    (5000, U, Fault.UNKNOWN, True, False, _DOWN),  # also: a 5xx or 200 without a Kling body
    (5002, U, Fault.UNKNOWN, True, False, _DOWN),  # sent, then no answer
    (1400, U, Fault.UNKNOWN, True, False, _DOWN),
    (5003, U, Fault.UNKNOWN, True, False, _DOWN),
    (0, U, Fault.UNKNOWN, True, False, _DOWN),
]  # fmt: skip


@pytest.mark.parametrize(("code", "absent", "fault", "transient", "duplicate", "client"), ROWS)
def test_refusal_rows(
    code: int,
    absent: bool,
    fault: Fault,
    transient: bool,
    duplicate: bool,
    client: tuple[type[KlingError], int, int, str],
) -> None:
    row = refusal(code)
    assert (row.code, row.absent, row.fault, row.transient, row.duplicate) == (
        code,
        absent,
        fault,
        transient,
        duplicate,
    )
    # only a refusal that proves no task exists may send the create to another account
    assert row.fault.fails_over is (fault not in (Fault.REQUEST, Fault.UNKNOWN))
    assert not row.fault.fails_over or absent
    error = row.client_error("m")
    assert (type(error), error.code, error.http_status, error.message) == client


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        (1300, "", "Trigger the content security policy of the platform"),
        (1301, "blocked", "blocked"),
        (1200, "", "upstream rejected the request: "),
        (1200, "a {b} c", "upstream rejected the request: a {b} c"),
        (1303, "whatever upstream says", "parallel task over resource pack limit"),
    ],
)
def test_client_wording(code: int, message: str, expected: str) -> None:
    assert refusal(code).client_error(message).message == expected


@pytest.mark.parametrize(
    ("maybe_sent", "code", "absent"),
    [(False, 5001, True), (True, 5002, False)],  # unreachable before sending; no answer after
)
def test_transport_outcomes(maybe_sent: bool, code: int, absent: bool) -> None:
    assert transport_code(maybe_sent) == code
    assert refusal(code).absent is absent


@pytest.mark.parametrize(
    ("status", "code", "absent"),
    [
        (200, 5000, False),  # an empty 200 says nothing about the task
        (500, 5000, False),
        (502, 5000, False),  # a proxy's HTML page
        (504, 5000, False),
        (400, 1200, True),  # only a clean 4xx proves the request was refused
        (401, 1200, True),
        (429, 1200, True),
        (404, 1203, True),
    ],
)
def test_answers_without_a_kling_body(status: int, code: int, absent: bool) -> None:
    assert bare_http_code(status) == code
    assert refusal(code).absent is absent
