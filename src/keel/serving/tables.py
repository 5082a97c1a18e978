"""The serving layer's tables: API keys (stored hashed) and ground-truth feedback.

A key is never stored: only the sha256 of its secret part. Times are UNIX seconds.
Feedback rows are written by ``POST /v1/feedback`` and read by the monitoring layer,
one row per prediction id (a second report for the same id replaces the first).
"""

from __future__ import annotations

import sqlalchemy as sa

from keel.store.tables import metadata

__all__ = ["api_keys", "feedback"]

api_keys = sa.Table(
    "keel_api_keys",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("secret_sha256", sa.String(64), nullable=False),
    sa.Column("scopes", sa.String(200), nullable=False),
    sa.Column("rate_limit", sa.String(100)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("revoked_at", sa.Float),
)

feedback = sa.Table(
    "keel_feedback",
    metadata,
    sa.Column("prediction_id", sa.String(64), primary_key=True),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("value", sa.Float),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("key_id", sa.String(32)),
)
