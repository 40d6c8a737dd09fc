"""The soak's verdict: every invariant checked from the outside, against three independent records.

- the clients' own notes (which logical tasks were accepted, under which gateway id),
- the simulator's task list (what really runs upstream, keyed by the gateway id sent as Kling's
  ``external_task_id``),
- the gateway's SQLite file (task rows, balances, key spend and the append-only ledger), read-only.

Each check yields a count that must be 0 and a few examples, so a failure says what to look at.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from soak_clients import Logical

TERMINAL = frozenset({"succeed", "failed"})
CLOSED = TERMINAL | {"rejected"}  # rejected rows were refunded and hidden: they are finished too


@dataclass
class Verdict:
    figures: dict[str, int] = field(default_factory=dict)  # informative counts
    must_be_zero: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def flag(self, check: str, example: str) -> None:
        self.must_be_zero[check] = self.must_be_zero.get(check, 0) + 1
        if len(self.examples[check]) < 5:
            self.examples[check].append(example)

    def ok(self, *checks: str) -> None:
        for check in checks:
            self.must_be_zero.setdefault(check, 0)

    @property
    def failed(self) -> bool:
        return any(self.must_be_zero.values())


def logical_of(request_json: str) -> str:
    """The client's external id, recovered from the prompt (``soak <ext>``): it survives on rejected
    rows, whose ``external_task_id`` the gateway releases."""
    prompt = str(orjson.loads(request_json).get("prompt", ""))
    return prompt.removeprefix("soak ")


def read_db(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    queries = {
        "tasks": "SELECT id, status, upstream_task_id, request_json, reserved_micro, "
        "charged_micro, duration FROM tasks",
        "ledger": "SELECT task_id, kind, amount_micro, charged_micro, user_id, key_id "
        "FROM ledger_entries",
        "users": "SELECT id, balance_micro FROM users",
        "keys": "SELECT id, spent_micro FROM api_keys",
    }
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return {name: conn.execute(sql).fetchall() for name, sql in queries.items()}


def audit_ledger(db: dict[str, list[tuple[Any, ...]]], v: Verdict) -> None:
    """balance = Σ ledger per user; key spend = −Σ its task entries; per task one reserve of exactly
    what the row holds, and once finished exactly one close giving back reserve − charge."""
    v.ok("ledger drift (µcredits)", "task money inconsistent", "ledger entry for unknown task")
    sums: Counter[int] = Counter()
    key_spend: Counter[int] = Counter()
    per_task: dict[str, list[tuple[str, int, int | None]]] = defaultdict(list)
    for task_id, kind, amount, charged, user_id, key_id in db["ledger"]:
        sums[user_id] += amount
        if kind in ("reserve", "close") and key_id is not None:
            key_spend[key_id] -= amount
        if task_id is not None:
            per_task[task_id].append((kind, amount, charged))
    drift = 0
    for user_id, balance in db["users"]:
        if balance != sums[user_id]:
            drift += abs(balance - sums[user_id])
            v.flag(
                "ledger drift (µcredits)",
                f"user {user_id}: balance {balance} ≠ ledger {sums[user_id]}",
            )
    for key_id, spent in db["keys"]:
        if spent != key_spend[key_id]:
            drift += abs(spent - key_spend[key_id])
            v.flag(
                "ledger drift (µcredits)",
                f"key {key_id}: spent {spent} ≠ ledger {key_spend[key_id]}",
            )
    if drift:
        v.must_be_zero["ledger drift (µcredits)"] = drift
    known = set()
    for task_id, status, _up, _req, reserved, charged, duration in db["tasks"]:
        known.add(task_id)
        entries = per_task.get(task_id, [])
        reserves = [e for e in entries if e[0] == "reserve"]
        closes = [e for e in entries if e[0] == "close"]
        problem = ""
        if len(reserves) != (1 if reserved > 0 else 0) or (
            reserves and reserves[0][1] != -reserved
        ):
            problem = f"reserves {reserves} for reserved {reserved}"
        elif status in CLOSED and reserved > 0:
            expected = (reserved // max(1, duration)) * duration if status == "succeed" else 0
            if (
                len(closes) != 1
                or charged != expected
                or closes[0][1:] != (reserved - expected, expected)
            ):
                problem = (
                    f"{status}: closes {closes}, charged {charged}, expected charge {expected}"
                )
        elif status not in CLOSED and closes:
            problem = f"{status} but closed: {closes}"
        if problem:
            v.flag("task money inconsistent", f"task {task_id}: {problem}")
    for task_id in per_task.keys() - known:
        v.flag("ledger entry for unknown task", task_id)
    v.figures["ledger entries"] = len(db["ledger"])


def audit_upstream(
    db: dict[str, list[tuple[Any, ...]]], sim_tasks: list[dict[str, Any]], v: Verdict
) -> None:
    """Upstream holds at most one task per gateway task and per logical task, and each belongs to a
    live (not rejected) gateway row that points back at it."""
    checks = (
        "upstream tasks sharing one external_task_id",
        "logical tasks with >1 upstream task",
        "upstream task unknown to the gateway",
        "upstream task behind a rejected gateway row",
        "gateway row not pointing at its upstream task",
    )
    v.ok(*checks)
    rows = {r[0]: r for r in db["tasks"]}
    per_ext = Counter(str((t.get("task_info") or {}).get("external_task_id")) for t in sim_tasks)
    per_logical: Counter[str] = Counter()
    for ext, n in per_ext.items():
        if n > 1:
            v.flag(checks[0], f"{ext}: {n} upstream tasks")
    for t in sim_tasks:
        ext = str((t.get("task_info") or {}).get("external_task_id"))
        row = rows.get(ext)
        if row is None:
            v.flag(checks[2], f"upstream {t['task_id']} (external id {ext})")
            continue
        per_logical[logical_of(row[3])] += 1
        if row[1] == "rejected":
            v.flag(
                checks[3], f"gateway {ext} rejected, upstream {t['task_id']} is {t['task_status']}"
            )
        elif row[2] != t["task_id"]:
            v.flag(
                checks[4], f"gateway {ext} has upstream id {row[2]}, upstream holds {t['task_id']}"
            )
    for logical, n in per_logical.items():
        if n > 1:
            v.flag(checks[1], f"{logical}: {n} upstream tasks")
    v.figures["upstream tasks"] = len(sim_tasks)
    v.figures["upstream tasks not finished"] = sum(
        t["task_status"] not in TERMINAL for t in sim_tasks
    )


def audit_tasks(
    db: dict[str, list[tuple[Any, ...]]],
    tasks: list[Logical],
    final: dict[str, tuple[int, str | None, str | None]],
    v: Verdict,
) -> None:
    """Accepted = the client got a task id. Each must still be known under its
    external id, as the same task, and finished; rows the clients never learned of
    (they gave up) must be finished as well."""
    checks = (
        "lost: accepted, unknown to the gateway",
        "lost: accepted, not terminal",
        "accepted id changed",
    )
    v.ok(*checks, "gateway rows not finished", "valid creates refused (4xx other than 429)")
    statuses = {r[0]: r[1] for r in db["tasks"]}
    for task in tasks:
        # every body is valid: a refusal is an idempotent retry turned away
        if task.outcome == "refused":
            v.flag("valid creates refused (4xx other than 429)", f"{task.ext}: {task.detail}")
        if task.outcome != "accepted":
            continue
        status, task_id, wire = final[task.ext]
        if status != 200 or task.task_id not in statuses:
            v.flag(checks[0], f"{task.ext} → {task.task_id}: GET answered {status}")
        elif task_id != task.task_id:
            v.flag(checks[2], f"{task.ext}: accepted as {task.task_id}, now {task_id}")
        elif wire not in TERMINAL or statuses[task.task_id] not in TERMINAL:
            v.flag(checks[1], f"{task.ext} → {task.task_id}: {wire} (row {statuses[task.task_id]})")
    for task_id, row_status, *_ in db["tasks"]:
        if row_status not in CLOSED:
            v.flag("gateway rows not finished", f"{task_id}: {row_status}")
    outcomes = Counter(t.outcome for t in tasks)
    v.figures["logical tasks"] = len(tasks)
    for outcome in ("accepted", "gave_up", "refused"):
        v.figures[f"logical {outcome}"] = outcomes[outcome]
    v.figures["create attempts"] = sum(t.attempts for t in tasks)
    rows = Counter(r[1] for r in db["tasks"])
    for name in ("succeed", "failed", "rejected"):
        v.figures[f"gateway rows {name}"] = rows[name]
    v.figures["accepted succeed"] = sum(
        final[t.ext][2] == "succeed" for t in tasks if t.outcome == "accepted"
    )
    v.figures["accepted failed"] = sum(
        final[t.ext][2] == "failed" for t in tasks if t.outcome == "accepted"
    )
