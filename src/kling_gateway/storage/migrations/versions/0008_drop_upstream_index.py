"""tasks: drop ix_tasks_upstream, an index every create wrote twice and no query reads

Revision ID: 0008
Revises: 0007

``(upstream_account_id, upstream_task_id)`` was indexed for lookups by upstream id that
the gateway never makes: inbound callbacks and the refresher find a task by our own id,
and the per-account counts read the partial ``ix_tasks_active_upstream``. Yet SQLite and
PostgreSQL maintained it on every insert and again on the compare-and-set that records
the upstream id — one b-tree of the eight a create's insert writes, one of the five its
compare-and-set rewrites. Deleting an upstream account (no command does) would now scan
``tasks`` for the foreign-key check; that is the one query the index still served.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_tasks_upstream", table_name="tasks")


def downgrade() -> None:
    op.create_index("ix_tasks_upstream", "tasks", ["upstream_account_id", "upstream_task_id"])
