"""The monitoring layer's read functions, for ``keel status`` and other layers."""

from __future__ import annotations

import sqlalchemy as sa

from keel.monitoring.tables import alerts
from keel.store.reads import has_table

__all__ = ["ACTIVE_ALERT_STATUSES", "open_alert_counts"]

ACTIVE_ALERT_STATUSES = ("open", "acknowledged")


def open_alert_counts(connection: sa.Connection) -> dict[str, int] | None:
    """Open (or acknowledged) alerts by severity; None where the store has no alerts table
    yet (monitoring was never set up on it)."""
    if not has_table(connection, alerts):
        return None
    query = (
        sa.select(alerts.c.severity, sa.func.count())
        .where(alerts.c.status.in_(ACTIVE_ALERT_STATUSES))
        .group_by(alerts.c.severity)
        .order_by(alerts.c.severity)
    )
    return {str(severity): int(n) for severity, n in connection.execute(query)}
