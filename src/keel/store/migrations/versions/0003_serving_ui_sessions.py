"""Serving: the dashboard's signing secrets and sessions, shared by every replica.

Revision ID: 0003_serving_ui_sessions
Revises: 0002_serving
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_serving_ui_sessions"
down_revision = "0002_serving"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "keel_ui_secrets",
        sa.Column("generation", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "keel_ui_sessions",
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_keel_ui_sessions_key_id", "keel_ui_sessions", ["key_id"])


def downgrade() -> None:
    op.drop_index("ix_keel_ui_sessions_key_id", "keel_ui_sessions")
    op.drop_table("keel_ui_sessions")
    op.drop_table("keel_ui_secrets")
