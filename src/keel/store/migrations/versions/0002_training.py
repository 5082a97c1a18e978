"""Training: the model registry (versions, run records, status history, gate decisions).

Revision ID: 0002_training
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_training"
down_revision = "0001_foundation"
branch_labels = ("training",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "keel_model_versions",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("status_at", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("artifact", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("data_ref", sa.String(500), nullable=False),
        sa.Column("data_rows", sa.BigInteger, nullable=False),
        sa.Column("data_start", sa.String(40)),
        sa.Column("data_end", sa.String(40)),
        sa.Column("metrics", sa.Text, nullable=False),
        sa.Column("duration_s", sa.Float, nullable=False),
        sa.Column("gate_passed", sa.Boolean),
    )
    op.create_index("ix_keel_model_versions_status", "keel_model_versions", ["status", "version"])
    op.create_table(
        "keel_model_records",
        sa.Column(
            "version",
            sa.Integer,
            sa.ForeignKey("keel_model_versions.version", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("record", sa.Text, nullable=False),
    )
    op.create_table(
        "keel_model_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "version", sa.Integer, sa.ForeignKey("keel_model_versions.version"), nullable=False
        ),
        sa.Column("from_status", sa.String(20)),
        sa.Column("to_status", sa.String(20), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("forced", sa.Boolean, nullable=False),
    )
    op.create_index("ix_keel_model_events_version", "keel_model_events", ["version", "id"])
    op.create_index("ix_keel_model_events_to_status", "keel_model_events", ["to_status", "id"])
    op.create_table(
        "keel_gate_decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "version", sa.Integer, sa.ForeignKey("keel_model_versions.version"), nullable=False
        ),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("decision", sa.Text, nullable=False),
    )
    op.create_index("ix_keel_gate_decisions_version", "keel_gate_decisions", ["version", "id"])
