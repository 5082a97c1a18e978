"""Data: published data versions and ingestion runs.

Revision ID: 0002_data
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_data"
down_revision = "0001_foundation"
branch_labels = ("data",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "keel_data_versions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("artifact", sa.String(64), nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("schema", sa.JSON, nullable=False),
        sa.Column("profile", sa.JSON, nullable=False),
        sa.Column("watermark", sa.String(64), nullable=True),
        sa.Column("time_min", sa.String(64), nullable=True),
        sa.Column("time_max", sa.String(64), nullable=True),
        sa.Column("lineage", sa.JSON, nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_keel_data_versions_source", "keel_data_versions", ["source"])
    op.create_table(
        "keel_data_runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float, nullable=False),
        sa.Column("version_id", sa.String(64), nullable=True),
        sa.Column("rows", sa.BigInteger, nullable=True),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("report", sa.JSON, nullable=True),
        sa.Column("report_artifact", sa.String(64), nullable=True),
        sa.Column("quarantine_artifact", sa.String(64), nullable=True),
        sa.Column("lineage", sa.JSON, nullable=True),
    )
    op.create_index("ix_keel_data_runs_source", "keel_data_runs", ["source"])


def downgrade() -> None:
    op.drop_table("keel_data_runs")
    op.drop_table("keel_data_versions")
