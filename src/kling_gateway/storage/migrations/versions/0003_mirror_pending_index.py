"""mirror pending index

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WHERE = sa.text("status = 'succeed' AND origin_result_json IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_tasks_mirror_pending", "tasks", ["id"], sqlite_where=_WHERE, postgresql_where=_WHERE
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_mirror_pending", table_name="tasks")
