"""The serving layer's tables: API keys (stored hashed), ground-truth feedback, and the
dashboard's signing secrets and sessions.

A key is never stored: only the sha256 of its secret part. Times are UNIX seconds.
Feedback rows are written by ``POST /v1/feedback`` and read by the monitoring layer,
one row per prediction id (a second report for the same id replaces the first).
"""

from __future__ import annotations

import sqlalchemy as sa

from keel.store.tables import metadata

__all__ = ["api_keys", "feedback", "ui_secrets", "ui_sessions"]

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

# The dashboard's cookie-signing secrets, newest generation current; an older one is
# still accepted for one session lifetime after the next was created (see keel.ui.session).
ui_secrets = sa.Table(
    "keel_ui_secrets",
    metadata,
    sa.Column("generation", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("secret", sa.String(128), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

# One row per dashboard session that has not been signed out: every replica checks it, so
# signing out (or revoking the key) ends the session everywhere. The id is the sha256 of
# the session's nonce, so the table alone cannot be turned into a cookie.
ui_sessions = sa.Table(
    "keel_ui_sessions",
    metadata,
    sa.Column("session_id", sa.String(64), primary_key=True),
    sa.Column("key_id", sa.String(32), nullable=False, index=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)
