"""Delivering the outbox: every due row is offered to its sink until one accepts it.

A failed delivery is kept with its error and tried again after a backoff that doubles
up to five minutes, for as long as it takes: an hour-long sink outage delays alerts, it
never loses them. Rows for a sink no longer configured wait for it to come back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import orjson
import sqlalchemy as sa

from keel.monitoring.alerts.sinks import Sink
from keel.monitoring.tables import alert_outbox
from keel.store.metadata import MetadataStore

__all__ = ["DeliveryResult", "backoff", "deliver"]

MAX_BACKOFF_S = 300.0


def backoff(attempts: int) -> float:
    """Seconds to wait after the ``attempts``-th failure: 5, 10, 20 ... capped at 300."""
    return float(min(MAX_BACKOFF_S, 5.0 * 2 ** max(attempts - 1, 0)))


@dataclass(frozen=True)
class DeliveryResult:
    delivered: int
    failed: int
    pending: int


def deliver(
    store: MetadataStore, sinks: Mapping[str, Sink], now: float, limit: int = 100
) -> DeliveryResult:
    """Offer each due outbox row to its sink once; record success or the error."""
    due = (
        sa.select(alert_outbox)
        .where(alert_outbox.c.delivered_at.is_(None), alert_outbox.c.next_attempt_at <= now)
        .order_by(alert_outbox.c.id)
        .limit(limit)
    )
    with store.begin() as conn:
        rows = conn.execute(due).all()
    delivered = failed = 0
    for row in rows:
        sink = sinks.get(row.sink)
        if sink is None:
            continue
        error = _send(sink, row.payload)
        _record(store, row, error, now)
        delivered, failed = (delivered + 1, failed) if error is None else (delivered, failed + 1)
    return DeliveryResult(delivered, failed, pending(store))


def pending(store: MetadataStore) -> int:
    """Outbox rows not yet delivered."""
    query = sa.select(sa.func.count()).where(alert_outbox.c.delivered_at.is_(None))
    with store.begin() as conn:
        return int(conn.execute(query).scalar() or 0)


def _send(sink: Sink, payload: str) -> str | None:
    try:
        sink.send(orjson.loads(payload))
    except Exception as error:  # any failure of any sink is retried later
        return f"{type(error).__name__}: {error}"[:500]
    return None


def _record(
    store: MetadataStore, row: sa.Row[tuple[object, ...]], error: str | None, now: float
) -> None:
    attempts = int(row.attempts) + 1
    values: dict[str, object] = {"attempts": attempts, "last_error": error}
    if error is None:
        values["delivered_at"] = now
    else:
        values["next_attempt_at"] = now + backoff(attempts)
    with store.begin() as conn:
        conn.execute(alert_outbox.update().where(alert_outbox.c.id == row.id).values(**values))
