"""money

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 10:11:29.157486
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "prices",
        sa.Column("public_model", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("sound", sa.Boolean(), nullable=False),
        sa.Column("voice", sa.Boolean(), nullable=False),
        sa.Column("credits_per_second", sa.String(length=32), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("public_model", "mode", "sound", "voice", name=op.f("pk_prices")),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=True),
        sa.Column("task_id", sa.String(length=24), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("amount_micro", sa.BigInteger(), nullable=False),
        sa.Column("charged_micro", sa.BigInteger(), nullable=True),
        sa.Column("public_model", sa.String(length=64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name=op.f("fk_ledger_entries_key_id_api_keys")
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_ledger_entries_task_id_tasks")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_ledger_entries_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
        sa.UniqueConstraint("task_id", "kind", name=op.f("uq_ledger_entries_task_id_kind")),
    )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ledger_entries_user_id_created_at", ["user_id", "created_at"], unique=False
        )

    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("quota_micro", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("spent_micro", sa.BigInteger(), server_default="0", nullable=False)
        )

    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reserved_micro", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("charged_micro", sa.BigInteger(), nullable=True))

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("balance_micro", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("price_multiplier", sa.String(length=16), server_default="1", nullable=False)
        )


def downgrade() -> None:

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("price_multiplier")
        batch_op.drop_column("balance_micro")

    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("charged_micro")
        batch_op.drop_column("reserved_micro")

    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("spent_micro")
        batch_op.drop_column("quota_micro")

    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_entries_user_id_created_at")

    op.drop_table("ledger_entries")
    op.drop_table("prices")
