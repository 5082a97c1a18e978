"""The alert book: alerts and their outbox rows in the metadata store.

``observe`` applies one evaluation of a rule to the store in one transaction: it reads
the rule and subject's state, asks the pure ``decide`` what to do, writes the alert and,
for each sink that wants the severity, an outbox row. Delivery happens elsewhere
(``keel.monitoring.alerts.outbox``), so a sink that is down never loses an alert.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from keel.errors import AlertError
from keel.monitoring.alerts.rules import Action, AlertState, Rule, decide, evaluate, summary
from keel.monitoring.tables import alert_outbox, alerts
from keel.store.metadata import MetadataStore

__all__ = ["Alert", "AlertBook", "SinkRoute"]


@dataclass(frozen=True)
class Alert:
    """An alert as people see it."""

    id: str
    rule: str
    subject: str
    severity: str
    status: str
    summary: str
    runbook: str | None
    opened_at: float
    updated_at: float
    acknowledged_by: str | None
    resolved_at: float | None
    details: Mapping[str, Any]

    @classmethod
    def from_row(cls, row: Any) -> Alert:
        return cls(
            id=row.id,
            rule=row.rule,
            subject=row.subject,
            severity=row.severity,
            status=row.status,
            summary=row.summary,
            runbook=row.runbook,
            opened_at=row.opened_at,
            updated_at=row.updated_at,
            acknowledged_by=row.acknowledged_by,
            resolved_at=row.resolved_at,
            details=orjson.loads(row.details),
        )

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class SinkRoute:
    """A sink's name and the severities it is sent."""

    name: str
    severities: frozenset[str]


class AlertBook:
    """Alerts and their deliveries, kept in the metadata store."""

    def __init__(self, store: MetadataStore, sinks: Sequence[SinkRoute] = ()) -> None:
        self.store = store
        self.sinks = list(sinks)

    def observe(
        self, rule: Rule, signals: Mapping[str, Any], now: float, subject: str = "model"
    ) -> Action:
        """Evaluate ``rule`` on ``signals`` and record what follows from it."""
        firing = evaluate(rule.when, signals)
        with self.store.begin() as conn:
            row = self._open_row(conn, rule.name, subject)
            action = decide(self._state(conn, row, rule.name, subject), firing, now, rule)
            self._apply(conn, action, row, rule, subject, signals, now)
        return action

    def event(
        self,
        name: str,
        subject: str,
        severity: str,
        summary: str,
        details: Mapping[str, Any],
        now: float,
    ) -> Alert:
        """Record a one-off event (e.g. a retrain's outcome) as an already resolved alert
        and tell the sinks that want its severity."""
        alert_id = uuid.uuid4().hex
        with self.store.begin() as conn:
            conn.execute(alerts.insert().values(
                id=alert_id, rule=name, subject=subject, severity=severity, status="resolved",
                summary=summary, details=_details(details), runbook=f"runbook#{name}",
                open_key=None, clear_count=0, opened_at=now, updated_at=now, resolved_at=now,
            ))  # fmt: skip
            row = self._row(conn, alert_id)
            self._enqueue(conn, alert_id, "opened", severity, _payload(row, "opened"), now)
        return self._get(alert_id)

    def list(self, status: str | None = None) -> list[Alert]:
        """Alerts, newest first; ``status`` is open, acknowledged or resolved."""
        query = sa.select(alerts).order_by(alerts.c.opened_at.desc())
        if status is not None:
            query = query.where(alerts.c.status == status)
        with self.store.begin() as conn:
            return [Alert.from_row(row) for row in conn.execute(query)]

    def acknowledge(self, alert_id: str, by: str, now: float) -> Alert:
        """Mark an open alert as acknowledged: someone is on it (it stays open)."""
        return self._update(alert_id, now, {"status": "acknowledged", "acknowledged_by": by,
                                            "acknowledged_at": now})  # fmt: skip

    def resolve(self, alert_id: str, now: float) -> Alert:
        """Resolve an alert by hand; its sinks are told."""
        with self.store.begin() as conn:
            row = self._row(conn, alert_id)
            if row.status != "resolved":
                self._close(conn, row, now)
                payload = _payload(row, "resolved")
                self._enqueue(conn, row.id, "resolved", row.severity, payload, now)
        return self._get(alert_id)

    # -- internals ----------------------------------------------------------------------

    def _open_row(self, conn: sa.Connection, rule: str, subject: str) -> Any:
        key = f"{rule}|{subject}"
        return conn.execute(sa.select(alerts).where(alerts.c.open_key == key)).first()

    def _state(self, conn: sa.Connection, row: Any, rule: str, subject: str) -> AlertState:
        if row is not None:
            return AlertState(open=True, clear_count=row.clear_count)
        last = conn.execute(
            sa.select(sa.func.max(alerts.c.resolved_at)).where(
                alerts.c.rule == rule, alerts.c.subject == subject
            )
        ).scalar()
        return AlertState(open=False, resolved_at=last)

    def _apply(
        self,
        conn: sa.Connection,
        action: Action,
        row: Any,
        rule: Rule,
        subject: str,
        signals: Mapping[str, Any],
        now: float,
    ) -> None:
        if action == "open":
            self._insert(conn, rule, subject, signals, now)
        elif action == "refresh":
            conn.execute(
                alerts.update()
                .where(alerts.c.id == row.id)
                .values(
                    clear_count=0,
                    updated_at=now,
                    details=_details(signals),
                    summary=summary(rule, subject, signals),
                )
            )
        elif action == "clearing":
            conn.execute(
                alerts.update()
                .where(alerts.c.id == row.id)
                .values(clear_count=row.clear_count + 1, updated_at=now)
            )
        elif action == "resolve":
            self._close(conn, row, now)
            self._enqueue(conn, row.id, "resolved", row.severity, _payload(row, "resolved"), now)

    def _insert(
        self, conn: sa.Connection, rule: Rule, subject: str, signals: Mapping[str, Any], now: float
    ) -> None:
        alert_id = uuid.uuid4().hex
        values = {
            "id": alert_id,
            "rule": rule.name,
            "subject": subject,
            "severity": rule.severity,
            "status": "open",
            "summary": summary(rule, subject, signals),
            "details": _details(signals),
            "runbook": rule.runbook or f"runbook#{rule.name}",
            "open_key": f"{rule.name}|{subject}",
            "clear_count": 0,
            "opened_at": now,
            "updated_at": now,
        }
        conn.execute(alerts.insert().values(**values))
        row = self._row(conn, alert_id)
        self._enqueue(conn, row.id, "opened", rule.severity, _payload(row, "opened"), now)

    def _close(self, conn: sa.Connection, row: Any, now: float) -> None:
        conn.execute(
            alerts.update()
            .where(alerts.c.id == row.id)
            .values(status="resolved", open_key=None, resolved_at=now, updated_at=now)
        )

    def _enqueue(
        self,
        conn: sa.Connection,
        alert_id: str,
        event: str,
        severity: str,
        payload: dict[str, Any],
        now: float,
    ) -> None:
        rows = [
            {
                "alert_id": alert_id,
                "event": event,
                "sink": sink.name,
                "payload": orjson.dumps(payload).decode(),
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for sink in self.sinks
            if severity in sink.severities
        ]
        if rows:
            conn.execute(alert_outbox.insert(), rows)

    def _update(self, alert_id: str, now: float, values: dict[str, Any]) -> Alert:
        with self.store.begin() as conn:
            row = self._row(conn, alert_id)
            if row.status == "resolved":
                raise AlertError(f"alert {alert_id} is already resolved; nothing to acknowledge")
            conn.execute(
                alerts.update().where(alerts.c.id == row.id).values(updated_at=now, **values)
            )
        return self._get(alert_id)

    def _row(self, conn: sa.Connection, alert_id: str) -> Any:
        rows = conn.execute(sa.select(alerts).where(alerts.c.id.startswith(alert_id))).all()
        if len(rows) != 1:
            found = "no alert" if not rows else "more than one alert"
            raise AlertError(f"{found} has an id starting {alert_id!r}; see `keel alerts list`")
        return rows[0]

    def _get(self, alert_id: str) -> Alert:
        with self.store.begin() as conn:
            return Alert.from_row(self._row(conn, alert_id))


def _details(signals: Mapping[str, Any]) -> str:
    return orjson.dumps(dict(signals), default=str).decode()


def _payload(row: Any, event: str) -> dict[str, Any]:
    """What every sink is given: a plain JSON description of the alert event."""
    return {
        "event": event,
        "alert_id": row.id,
        "rule": row.rule,
        "subject": row.subject,
        "severity": row.severity,
        "summary": row.summary,
        "runbook": row.runbook,
        "opened_at": row.opened_at,
        "details": orjson.loads(row.details),
    }
