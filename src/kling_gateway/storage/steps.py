"""What a hot-path write is made of, shared by the drivers (hotpath.py,
sqlite_hot.py) and their callers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class UniqueViolation(Exception):
    """A unique constraint refused a write; ``constraint`` names what (text from the driver)."""

    def __init__(self, constraint: str) -> None:
        super().__init__(constraint)
        self.constraint = constraint


@dataclass(frozen=True, slots=True)
class Step:
    """One statement of a transaction. ``require``: the transaction is rolled back unless this
    statement returns rows (a compare-and-set that must match). ``only_if_prev``: run only if the
    previous statement returned rows (e.g. move money only if the ledger row was new)."""

    sql: str
    args: Sequence[Any]
    require: bool = False
    only_if_prev: bool = False


def should_run(results: list[int], steps: Sequence[Step], i: int) -> bool:
    """Whether step ``i`` runs, given the row counts of the steps before it."""
    return not (steps[i].only_if_prev and (not results or results[-1] == 0))
