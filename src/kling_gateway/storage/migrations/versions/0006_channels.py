"""channels: upstream accounts with priority, weight, models, caps, cooldowns, probes, keys

Revision ID: 0006
Revises: 0005

Credentials move from ``upstream_accounts`` to ``upstream_keys`` (an account may hold several keys
that traffic rotates over); existing credentials are copied over as each account's first key.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CREDENTIALS = ("access_key_enc", "secret_key_enc", "api_key_enc")


def upgrade() -> None:
    op.create_table(
        "upstream_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("access_key_enc", sa.Text(), nullable=True),
        sa.Column("secret_key_enc", sa.Text(), nullable=True),
        sa.Column("api_key_enc", sa.Text(), nullable=True),
        sa.Column("hint", sa.String(length=32), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("cooldown_until", sa.BigInteger(), nullable=True),
        sa.Column("cooldown_reason", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["upstream_accounts.id"],
            name=op.f("fk_upstream_keys_account_id_upstream_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upstream_keys")),
    )
    with op.batch_alter_table("upstream_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_upstream_keys_account_id"), ["account_id"], unique=False
        )

    with op.batch_alter_table("upstream_accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("priority", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("weight", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("models_json", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("model_map_json", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("caps_json", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("cooldown_until", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("cooldown_reason", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("probed_at", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("probe_ms", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("probe_error", sa.String(length=300), nullable=True))

    op.execute(
        "INSERT INTO upstream_keys "
        "(account_id, access_key_enc, secret_key_enc, api_key_enc, hint, enabled, created_at) "
        "SELECT id, access_key_enc, secret_key_enc, api_key_enc, '', TRUE, created_at "
        "FROM upstream_accounts "
        "WHERE access_key_enc IS NOT NULL OR api_key_enc IS NOT NULL"
    )
    # SQLite ≥ 3.35 drops a column in place; no table rebuild, so the tasks →
    # accounts key is untouched.
    for column in _CREDENTIALS:
        op.drop_column("upstream_accounts", column)


def downgrade() -> None:
    for column in _CREDENTIALS:
        op.add_column("upstream_accounts", sa.Column(column, sa.Text(), nullable=True))
    for column in _CREDENTIALS:
        op.execute(
            f"UPDATE upstream_accounts SET {column} = (SELECT k.{column} FROM upstream_keys k "
            "WHERE k.account_id = upstream_accounts.id ORDER BY k.id LIMIT 1)"
        )
    for column in (
        "probe_error",
        "probe_ms",
        "probed_at",
        "cooldown_reason",
        "cooldown_until",
        "caps_json",
        "model_map_json",
        "models_json",
        "weight",
        "priority",
    ):
        op.drop_column("upstream_accounts", column)
    op.drop_index(op.f("ix_upstream_keys_account_id"), table_name="upstream_keys")
    op.drop_table("upstream_keys")
