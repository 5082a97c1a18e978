"""Monitoring: log segments, alerts (one open per rule and subject), their outbox, retrains.

Revision ID: 0002_monitoring
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_monitoring"
down_revision = "0001_foundation"
branch_labels = ("monitoring",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "keel_alerts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("runbook", sa.String(300)),
        sa.Column("open_key", sa.String(420), unique=True),
        sa.Column("clear_count", sa.Integer, nullable=False),
        sa.Column("opened_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("acknowledged_at", sa.Float),
        sa.Column("acknowledged_by", sa.String(200)),
        sa.Column("resolved_at", sa.Float),
    )
    op.create_table(
        "keel_alert_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.String(32), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("sink", sa.String(200), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("delivered_at", sa.Float),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index(
        "keel_alert_outbox_due", "keel_alert_outbox", ["delivered_at", "next_attempt_at"]
    )
    op.create_table(
        "keel_retrain_runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("outcome", sa.String(40), nullable=False),
        sa.Column("details", sa.Text),
    )
    op.create_table(
        "keel_log_segments",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("location", sa.String(300), nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("starts_at", sa.Float, nullable=False),
        sa.Column("ends_at", sa.Float, nullable=False),
        sa.Column("sketch", sa.Text),
        sa.Column("committed_at", sa.Float, nullable=False),
    )
    op.create_index("keel_log_segments_time", "keel_log_segments", ["starts_at", "ends_at"])
