"""Features: cached offline snapshots and online materializations.

Revision ID: 0002_features
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_features"
down_revision = "0001_foundation"
branch_labels = ("features",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "keel_feature_snapshots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("view", sa.String(200), nullable=False),
        sa.Column("definition_hash", sa.String(64), nullable=False),
        sa.Column("inputs_hash", sa.String(64), nullable=False),
        sa.Column("inputs", sa.JSON, nullable=False),
        sa.Column("until", sa.String(32), nullable=False),
        sa.Column("artifact", sa.String(64), nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index(
        "ix_keel_feature_snapshots_key",
        "keel_feature_snapshots",
        ["view", "definition_hash", "inputs_hash", "until"],
    )
    op.create_table(
        "keel_feature_materializations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("view", sa.String(200), nullable=False),
        sa.Column("definition_hash", sa.String(64), nullable=False),
        sa.Column("until", sa.String(32), nullable=False),
        sa.Column("inputs_hash", sa.String(64), nullable=False),
        sa.Column("artifact", sa.String(64), nullable=False),
        sa.Column("written", sa.BigInteger, nullable=False),
        sa.Column("online", sa.String(200), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index(
        "ix_keel_feature_materializations_view", "keel_feature_materializations", ["view"]
    )
