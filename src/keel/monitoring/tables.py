"""The monitoring layer's tables: committed log segments, alerts and their outbox,
retrain runs.

One open alert per rule and subject is enforced by the database: ``open_key`` holds
``rule|subject`` while the alert is open or acknowledged and NULL once resolved, under a
unique constraint (both SQLite and PostgreSQL allow many NULLs). Every notification is
a row in the outbox first, delivered later and retried until a sink accepts it. Times
are UNIX seconds.
"""

from __future__ import annotations

import sqlalchemy as sa

from keel.store.tables import metadata

__all__ = ["alert_outbox", "alerts", "log_segments", "retrain_runs"]

alerts = sa.Table(
    "keel_alerts",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("rule", sa.String(200), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("runbook", sa.String(300)),
    sa.Column("open_key", sa.String(420), unique=True),
    sa.Column("clear_count", sa.Integer, nullable=False, default=0),
    sa.Column("opened_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("acknowledged_at", sa.Float),
    sa.Column("acknowledged_by", sa.String(200)),
    sa.Column("resolved_at", sa.Float),
)

alert_outbox = sa.Table(
    "keel_alert_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.String(32), nullable=False),
    sa.Column("event", sa.String(16), nullable=False),
    sa.Column("sink", sa.String(200), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("delivered_at", sa.Float),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("keel_alert_outbox_due", "delivered_at", "next_attempt_at"),
)

retrain_runs = sa.Table(
    "keel_retrain_runs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("outcome", sa.String(40), nullable=False),
    sa.Column("details", sa.Text),
)

log_segments = sa.Table(
    "keel_log_segments",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("location", sa.String(300), nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("starts_at", sa.Float, nullable=False),
    sa.Column("ends_at", sa.Float, nullable=False),
    sa.Column("sketch", sa.Text),
    sa.Column("committed_at", sa.Float, nullable=False),
    sa.Index("keel_log_segments_time", "starts_at", "ends_at"),
)
