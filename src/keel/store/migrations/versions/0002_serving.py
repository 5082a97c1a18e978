"""Serving: API keys (hashed) and ground-truth feedback by prediction id.

Revision ID: 0002_serving
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_serving"
down_revision = "0001_foundation"
branch_labels = ("serving",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "keel_api_keys",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("scopes", sa.String(200), nullable=False),
        sa.Column("rate_limit", sa.String(100)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("revoked_at", sa.Float),
    )
    op.create_table(
        "keel_feedback",
        sa.Column("prediction_id", sa.String(64), primary_key=True),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("key_id", sa.String(32)),
    )
