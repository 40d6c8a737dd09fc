"""admin limits: per-user and per-key overrides of the global limits, a daily spend cap, key IP
allow-lists

Revision ID: 0009
Revises: 0008

Every column is nullable and NULL means "the global default" (or, for the spend cap and the IP list,
"none"), so existing rows keep today's behaviour. They live on ``users`` and ``api_keys`` because
the principal lookup already joins those two rows (storage/accounts.py): the overrides reach the
create path with the cached key, at no extra round trip. The ledger index serves the per-key daily
spend sum, as ``ix_ledger_entries_user_id_created_at`` serves the per-user one.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIMITS = ("max_in_flight", "rate_per_second", "rate_burst", "daily_spend_micro")


def _columns() -> list[sa.Column[object]]:
    return [
        sa.Column("max_in_flight", sa.Integer(), nullable=True),
        sa.Column("rate_per_second", sa.String(length=32), nullable=True),
        sa.Column("rate_burst", sa.Integer(), nullable=True),
        sa.Column("daily_spend_micro", sa.BigInteger(), nullable=True),
    ]


def upgrade() -> None:
    for table in ("users", "api_keys"):
        for column in _columns():
            op.add_column(table, column)
    op.add_column("api_keys", sa.Column("allowed_ips", sa.Text(), nullable=True))
    op.create_index(
        "ix_ledger_entries_key_id_created_at", "ledger_entries", ["key_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_ledger_entries_key_id_created_at", table_name="ledger_entries")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("allowed_ips")
        for name in _LIMITS:
            batch.drop_column(name)
    with op.batch_alter_table("users") as batch:
        for name in _LIMITS:
            batch.drop_column(name)
