"""active-task indexes: the predicate spelled as ORs instead of an IN list

Revision ID: 0007
Revises: 0006

SQLite evaluates ``status IN ('queued', 'submitted', 'processing')`` in a partial index's predicate
by building a temporary b-tree of the three values — every time a row is inserted or its indexed
columns change, once per index: three on each task insert, six on each compare-and-set of its status
(EXPLAIN shows the ``OpenEphemeral`` opcodes). The same test written as ORs of equalities is plain
comparisons, half of the SQL's work per create (docs/benchmarks.md). PostgreSQL treats both
spellings alike; the indexes are rebuilt on both so one predicate text serves the count queries
(storage/limits.py) everywhere. On PostgreSQL each ``CREATE INDEX`` reads the whole ``tasks`` table
while holding off writes to it (the index itself holds only tasks in flight): on a large table, run
``kling-gateway db upgrade`` as its own deploy step.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = sa.text("status IN ('queued', 'submitted', 'processing')")
_NEW = sa.text("(status = 'queued' OR status = 'submitted' OR status = 'processing')")
_INDEXES = (
    ("ix_tasks_active_user_id", ["user_id", "status"]),
    ("ix_tasks_active_key_id", ["key_id", "status"]),
    ("ix_tasks_active_upstream", ["upstream_account_id", "upstream_model", "status"]),
)


def _rebuild(predicate: sa.TextClause) -> None:
    for name, columns in _INDEXES:
        op.drop_index(name, table_name="tasks")
        op.create_index(name, "tasks", columns, sqlite_where=predicate, postgresql_where=predicate)


def upgrade() -> None:
    _rebuild(_NEW)


def downgrade() -> None:
    _rebuild(_OLD)
