"""Data: a data version can be retired (kept for lineage, skipped by readers).

Revision ID: 0003_data_retired
Revises: 0002_data
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_data_retired"
down_revision = "0002_data"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("keel_data_versions") as table:
        table.add_column(sa.Column("retired_at", sa.Float, nullable=True))
        table.add_column(sa.Column("retired_reason", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("keel_data_versions") as table:
        table.drop_column("retired_reason")
        table.drop_column("retired_at")
