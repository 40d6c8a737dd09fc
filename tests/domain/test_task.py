"""Task statuses: forward-only moves, terminal finality, wire names, and parsing upstream values."""

from __future__ import annotations

import itertools

import pytest

from kling_gateway.domain.task import (
    ACTIVE,
    TERMINAL,
    TaskStatus,
    can_move,
    from_upstream,
    rank,
    wire_status,
)

S = TaskStatus
ALL = list(S)

# current -> statuses it may move to (everything else is refused).
ALLOWED: dict[TaskStatus, set[TaskStatus]] = {
    S.QUEUED: {S.SUBMITTED, S.PROCESSING, S.SUCCEED, S.FAILED, S.REJECTED},
    S.SUBMITTED: {S.PROCESSING, S.SUCCEED, S.FAILED, S.REJECTED},
    S.PROCESSING: {S.SUCCEED, S.FAILED, S.REJECTED},
    S.SUCCEED: set(),
    S.FAILED: set(),
    S.REJECTED: set(),
}


@pytest.mark.parametrize(("current", "new"), list(itertools.product(ALL, ALL)))
def test_can_move_table(current: TaskStatus, new: TaskStatus) -> None:
    assert can_move(current, new) is (new in ALLOWED[current])


@pytest.mark.parametrize("status", ALL)
def test_no_status_moves_to_itself(status: TaskStatus) -> None:
    assert not can_move(status, status)


def test_terminal_and_active_partition_statuses() -> None:
    assert {S.SUCCEED, S.FAILED, S.REJECTED} == TERMINAL
    assert {S.QUEUED, S.SUBMITTED, S.PROCESSING} == ACTIVE
    assert set(ALL) == TERMINAL | ACTIVE and not TERMINAL & ACTIVE


@pytest.mark.parametrize("status", sorted(TERMINAL))
def test_terminal_is_final(status: TaskStatus) -> None:
    assert not any(can_move(status, other) for other in ALL)


def test_rank_order() -> None:
    assert rank(S.QUEUED) < rank(S.SUBMITTED) < rank(S.PROCESSING) < rank(S.SUCCEED)
    assert rank(S.SUCCEED) == rank(S.FAILED) == rank(S.REJECTED)


@pytest.mark.parametrize(
    ("status", "wire"),
    [
        (S.QUEUED, "submitted"),
        (S.SUBMITTED, "submitted"),
        (S.PROCESSING, "processing"),
        (S.SUCCEED, "succeed"),
        (S.FAILED, "failed"),
        (S.REJECTED, "failed"),
    ],
)
def test_wire_status(status: TaskStatus, wire: str) -> None:
    assert wire_status(status) == wire
    assert wire in {"submitted", "processing", "succeed", "failed"}  # only Kling's four


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("submitted", S.SUBMITTED),
        ("processing", S.PROCESSING),
        ("succeed", S.SUCCEED),
        ("succeeded", S.SUCCEED),  # new-design spelling
        ("failed", S.FAILED),
        ("queued", None),  # ours alone
        ("", None),
        ("SUCCEED", None),
        ("Succeed", None),
        (" succeed", None),
        ("success", None),
        ("pending", None),
        ("canceled", None),
    ],
)
def test_from_upstream(value: str, expected: TaskStatus | None) -> None:
    assert from_upstream(value) is expected


def test_from_upstream_does_not_accept_internal_rejected() -> None:
    assert from_upstream("rejected") is None


def test_status_values_are_strings() -> None:
    succeed: str = S.SUCCEED  # a status is a str: compared as one
    assert succeed == "succeed"
    assert str(S.PROCESSING) == "processing"
