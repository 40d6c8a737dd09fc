"""The create path's writes on PostgreSQL, one statement (one round trip) each.

A paid task insert, instead of five round trips:

Steps in a transaction cost a round trip each (BEGIN, debit user, debit key, insert,
ledger, COMMIT); chained data-modifying CTEs do the same work in one implicit
transaction, each part gated on the one before through its RETURNING rows. All or
nothing: the user row is locked and checked first (re-checked on the newest version), so
once the key's quota passes the debit cannot fail, and a duplicate id or
``external_task_id`` aborts the whole statement with its unique violation.

A compare-and-set with its webhook event (a create with a ``callback_url``), instead of four: the
event row is inserted only if the update matched, and ignored if (task, status) already has one.

Lock order: the user row, then task rows. A create holds its user row while its insert may wait on
another task row (a retried ``external_task_id`` waits for whoever is changing the row it
duplicates), so a transaction that changes a task and then reaches the user row (the event's or
the ledger row's foreign key, a credit) would deadlock with it. Both statements here, and a close
(money.py), take the user row ``FOR NO KEY UPDATE`` first: the lock the debit takes anyway, which
leaves other transactions' foreign key checks (``KEY SHARE``) free.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    BindParameter,
    Select,
    bindparam,
    exists,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.sql.dml import Update
from sqlalchemy.sql.expression import ClauseElement, ColumnElement

from .tables import api_keys, ledger_entries, tasks, users, webhook_deliveries

# The answer row: whether the balance, the key's quota and the insert passed (1) or not (0).
BALANCE, QUOTA, INSERTED = 0, 1, 2
LEDGER_COLUMNS = tuple(c.name for c in ledger_entries.c if c.name != "id")


def _count(cte: Any) -> ColumnElement[Any]:
    return select(func.count()).select_from(cte).scalar_subquery()


def reserve_insert(with_key: bool) -> ClauseElement:
    """Parameters: ``uid``, ``kid`` (with_key), ``amt``, every ``tasks`` column as ``t_<name>``,
    every ledger column as ``l_<name>``."""
    amt: BindParameter[int] = bindparam_int("amt")
    funded = lock_owner(bindparam_int("uid"), users.c.balance_micro >= amt).cte("funded")
    gate = exists(select(funded.c.id))
    charged = None
    if with_key:
        quota_ok = api_keys.c.quota_micro.is_(None) | (
            api_keys.c.spent_micro + amt <= api_keys.c.quota_micro
        )
        charged = (
            update(api_keys)
            .where(api_keys.c.id == bindparam_int("kid"), quota_ok, gate)
            .values(spent_micro=api_keys.c.spent_micro + amt)
            .returning(api_keys.c.id)
            .cte("charged")
        )
        gate = exists(select(charged.c.id))
    debited = (
        update(users)
        .where(users.c.id == bindparam_int("uid"), users.c.balance_micro >= amt, gate)
        .values(balance_micro=users.c.balance_micro - amt)
        .returning(users.c.id)
        .cte("debited")
    )
    row = select(*(_param("t_", c) for c in tasks.c)).where(exists(select(debited.c.id)))
    inserted = (
        insert(tasks)
        .from_select([c.name for c in tasks.c], row)
        .returning(tasks.c.id)
        .cte("inserted")
    )
    entry_cols = [ledger_entries.c[name] for name in LEDGER_COLUMNS]
    entry = select(*(_param("l_", c) for c in entry_cols)).where(exists(select(inserted.c.id)))
    booked = (
        insert(ledger_entries)
        .from_select(list(LEDGER_COLUMNS), entry)
        .returning(ledger_entries.c.id)
        .cte("booked")
    )
    quota = _count(charged) if charged is not None else literal_column("1")
    # ``booked`` is named so the ledger insert is rendered; PostgreSQL runs it whatever reads it.
    return select(_count(funded), quota, _count(inserted), _count(booked))


def cas_announced(cas: Update) -> ClauseElement:
    """Parameters: the compare-and-set's own, and every delivery column as ``e_<name>``. Answers
    (matched, event inserted). The user row is taken first (the lock order above)."""
    owner = lock_owner(_param("e_", webhook_deliveries.c.user_id)).cte("owner")
    moved = cas.where(exists(select(owner.c.id))).returning(tasks.c.id).cte("moved")
    row = select(*(_param("e_", c) for c in webhook_deliveries.c)).where(exists(select(moved.c.id)))
    announced = (
        pg_insert(webhook_deliveries)
        .from_select([c.name for c in webhook_deliveries.c], row)
        .on_conflict_do_nothing()
        .returning(webhook_deliveries.c.id)
        .cte("announced")
    )
    return select(_count(moved), _count(announced))


def lock_owner(user_id: BindParameter[Any], *conds: ColumnElement[bool]) -> Select[Any]:
    """The user row, locked ``FOR NO KEY UPDATE`` (the lock order above)."""
    return select(users.c.id).where(users.c.id == user_id, *conds).with_for_update(key_share=True)


def bindparam_int(name: str) -> BindParameter[int]:
    return bindparam(name, type_=BigInteger)


def _param(prefix: str, column: Any) -> BindParameter[Any]:
    return bindparam(prefix + column.name, type_=column.type)
