"""limits: partial indexes for in-flight counts, per-key token buckets

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Only tasks in flight are indexed, so each index is as small as the work in progress. The predicate
# is the exact text the count queries use (storage/limits.py): SQLite uses a partial index only when
# the query repeats its predicate. ``status`` is the last column so SQLite can count from the index
# alone (it re-checks the predicate's column; PostgreSQL would do an index-only scan without it).
_ACTIVE = sa.text("status IN ('queued', 'submitted', 'processing')")


def upgrade() -> None:
    op.create_table(
        "rate_buckets",
        sa.Column("key_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tokens_nano", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name=op.f("fk_rate_buckets_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_rate_buckets")),
    )
    op.create_index(
        "ix_tasks_active_user_id",
        "tasks",
        ["user_id", "status"],
        sqlite_where=_ACTIVE,
        postgresql_where=_ACTIVE,
    )
    op.create_index(
        "ix_tasks_active_key_id",
        "tasks",
        ["key_id", "status"],
        sqlite_where=_ACTIVE,
        postgresql_where=_ACTIVE,
    )
    op.create_index(
        "ix_tasks_active_upstream",
        "tasks",
        ["upstream_account_id", "upstream_model", "status"],
        sqlite_where=_ACTIVE,
        postgresql_where=_ACTIVE,
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_active_upstream", table_name="tasks")
    op.drop_index("ix_tasks_active_key_id", table_name="tasks")
    op.drop_index("ix_tasks_active_user_id", table_name="tasks")
    op.drop_table("rate_buckets")
