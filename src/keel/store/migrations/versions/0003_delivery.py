"""Delivery: the state of each shadow or canary rollout.

Revision ID: 0003_delivery
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_delivery"
down_revision = "0001_foundation"
branch_labels = ("delivery",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "keel_rollouts",
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("share", sa.Float, nullable=False),
        sa.Column("step_index", sa.Integer, nullable=False),
        sa.Column("step_started_at", sa.Float, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
