"""Delivery metrics: how often models ship, how fast, how often a change fails, how fast
service is restored, and how old the data behind production is.

The four DORA measures, read for models from the registry's status history:

- a *change* is a version starting to serve production traffic (deployed to production or
  staged as canary); a canary's later promotion completes the same change, and a
  ``keel rollback`` restores an earlier version rather than making a change;
- *deployment frequency* is changes per week over the window;
- *lead time* runs from the newest data version a model trained on being published, to
  the model being trained, to it answering all production traffic;
- *change failure rate* is the share of changes rolled back: a canary rolled back by its
  guards, or a production version replaced by ``keel rollback``;
- *time to restore* runs from a critical alert opening to it being resolved or to the
  rollback that ended it, whichever came first.

*Staleness* is the age of the newest data the production model saw (the end of its
training data's time range, or else when that data was published).

``delivery_metrics`` is pure; ``read_delivery`` gathers its inputs through each layer's
public reads.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from keel.training.versions import StatusEvent

if TYPE_CHECKING:
    from keel.project import Project

__all__ = [
    "Change",
    "DeliveryMetrics",
    "Incident",
    "Trained",
    "changes_of",
    "delivery_metrics",
    "read_delivery",
    "report_lines",
]

_HOUR, _DAY, _WEEK = 3600.0, 86400.0, 7 * 86400.0
_ROLLBACK = "rollback:"  # the reason keel rollback records on the restored version
_SERVING = ("canary", "production")


@dataclass(frozen=True)
class Trained:
    """When a version was trained, and on data published when, ending when."""

    created_at: float
    data_published_at: float | None = None
    data_end: str | None = None


@dataclass(frozen=True)
class Change:
    """One version starting to serve production traffic, and what became of it."""

    version: int
    started_at: float
    production_at: float | None = None
    failed_at: float | None = None


@dataclass(frozen=True)
class Incident:
    """A critical alert: when it opened and when it was resolved (None: still open)."""

    rule: str
    opened_at: float
    resolved_at: float | None


@dataclass(frozen=True)
class DeliveryMetrics:
    """The five delivery measures over a window ending ``now``."""

    window_days: float
    changes: int
    deployments_per_week: float
    lead_time_hours: dict[str, float | None]
    lead_times: int
    failures: int
    change_failure_rate: float | None
    time_to_restore_hours: float | None
    restored: int
    still_open: int
    newest_data: str | None
    staleness_days: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def changes_of(events: Iterable[StatusEvent]) -> list[Change]:
    """The changes in a status history given oldest first, with their promotion and
    failure times."""
    changes: list[Change] = []
    for event in events:
        if _starts_change(event):
            at = event.at if event.to_status == "production" else None
            changes.append(Change(event.version, event.at, production_at=at))
        elif event.to_status == "production" and event.from_status == "canary":
            _update(changes, event.version, production_at=event.at)
        elif event.from_status == "canary" and event.to_status == "archived":
            if event.reason.startswith("canary rolled back"):
                _update(changes, event.version, failed_at=event.at)
        elif event.to_status == "production" and event.reason.startswith(_ROLLBACK):
            _fail_serving(changes, event)
    return changes


def _starts_change(event: StatusEvent) -> bool:
    if event.to_status not in _SERVING or event.reason.startswith(_ROLLBACK):
        return False
    return not (event.to_status == "production" and event.from_status == "canary")


def _update(changes: list[Change], version: int, **values: float) -> None:
    for index in range(len(changes) - 1, -1, -1):
        if changes[index].version == version:
            changes[index] = Change(**{**asdict(changes[index]), **values})
            return


def _fail_serving(changes: list[Change], rollback: StatusEvent) -> None:
    """A rollback fails the newest change that had reached production before it."""
    for index in range(len(changes) - 1, -1, -1):
        change = changes[index]
        if change.production_at is not None and change.version != rollback.version:
            if change.failed_at is None:
                changes[index] = Change(**{**asdict(change), "failed_at": rollback.at})
            return


def delivery_metrics(
    events: Sequence[StatusEvent],
    trained: Mapping[int, Trained],
    incidents: Sequence[Incident],
    production: int | None,
    now: float,
    window_days: float = 30.0,
) -> DeliveryMetrics:
    """The delivery measures of the changes and incidents that began inside the window."""
    since = now - window_days * _DAY
    changes = [c for c in changes_of(events) if c.started_at >= since]
    failures = sum(c.failed_at is not None for c in changes)
    legs = [_legs(c, trained.get(c.version)) for c in changes if c.production_at is not None]
    restore = _restore_times([i for i in incidents if i.opened_at >= since], changes)
    newest, staleness = _staleness(trained.get(production) if production else None, now)
    return DeliveryMetrics(
        window_days=window_days,
        changes=len(changes),
        deployments_per_week=len(changes) / (window_days * _DAY / _WEEK),
        lead_time_hours=_median_legs(legs),
        lead_times=len(legs),
        failures=failures,
        change_failure_rate=failures / len(changes) if changes else None,
        time_to_restore_hours=_median([t / _HOUR for t in restore if t is not None]),
        restored=sum(t is not None for t in restore),
        still_open=sum(t is None for t in restore),
        newest_data=newest,
        staleness_days=staleness,
    )


def _legs(change: Change, trained: Trained | None) -> dict[str, float | None]:
    assert change.production_at is not None
    if trained is None:
        return {"data_to_trained": None, "trained_to_production": None, "total": None}
    published = trained.data_published_at
    to_production = change.production_at - trained.created_at
    return {
        "data_to_trained": None if published is None else trained.created_at - published,
        "trained_to_production": to_production,
        "total": None if published is None else change.production_at - published,
    }


def _median_legs(legs: list[dict[str, float | None]]) -> dict[str, float | None]:
    names = ("data_to_trained", "trained_to_production", "total")
    return {
        name: _median([v / _HOUR for leg in legs if (v := leg[name]) is not None]) for name in names
    }


def _restore_times(incidents: Sequence[Incident], changes: Sequence[Change]) -> list[float | None]:
    rollbacks = sorted(c.failed_at for c in changes if c.failed_at is not None)
    restored: list[float | None] = []
    for incident in incidents:
        ends = [at for at in rollbacks if at >= incident.opened_at]
        if incident.resolved_at is not None:
            ends.append(incident.resolved_at)
        restored.append(min(ends) - incident.opened_at if ends else None)
    return restored


def _staleness(trained: Trained | None, now: float) -> tuple[str | None, float | None]:
    if trained is None:
        return None, None
    newest = _timestamp(trained.data_end) if trained.data_end else None
    if newest is None:
        newest = trained.data_published_at
    if newest is None:
        return None, None
    when = datetime.fromtimestamp(newest, UTC).isoformat(timespec="seconds")
    return when, (now - newest) / _DAY


def _timestamp(text: str) -> float | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


# -- reading ------------------------------------------------------------------------------


def read_delivery(
    project: Project, window_days: float = 30.0, now: float | None = None
) -> DeliveryMetrics:
    """The project's delivery measures, read through the registry, the data catalog and
    the alert book."""
    from keel.delivery.deployments import deployments
    from keel.monitoring.alerts.book import AlertBook
    from keel.training.registry import Registry

    now = time.time() if now is None else now
    events = list(reversed(deployments(project, limit=None)))
    registry = Registry(project.store)
    versions = {event.version for event in events}
    trained = {version: _trained(project, registry, version) for version in versions}
    incidents = [
        Incident(alert.rule, alert.opened_at, alert.resolved_at)
        for alert in AlertBook(project.store).list()
        if alert.severity == "critical"
    ]
    production = registry.production()
    number = production.version if production else None
    return delivery_metrics(events, trained, incidents, number, now, window_days)


def _trained(project: Project, registry: Any, version: int) -> Trained:
    from keel.data.catalog import Catalog

    found = registry.get(version)
    ids = [v["id"] for v in registry.record(version).get("data", {}).get("versions", [])]
    catalog = Catalog(project.store)
    published = [v.created_at for v in map(catalog.find, ids) if v is not None]
    return Trained(found.created_at, max(published, default=None), found.data_end)


# -- for people ---------------------------------------------------------------------------


def report_lines(data: dict[str, Any]) -> list[str]:
    """The delivery measures as lines for people: `keel report delivery` and the dashboard."""
    lead = data["lead_time_hours"]
    rate = data["change_failure_rate"]
    lines = [
        f"over the last {data['window_days']:g} days:",
        f"  deployments: {data['changes']} ({data['deployments_per_week']:.2f} per week)",
        f"  lead time (median of {data['lead_times']}): data -> trained "
        f"{_hours(lead['data_to_trained'])}, trained -> production "
        f"{_hours(lead['trained_to_production'])}, in all {_hours(lead['total'])}",
        "  change failure rate: "
        + ("no changes" if rate is None else f"{rate:.0%} ({data['failures']} rolled back)"),
        f"  time to restore (median of {data['restored']} critical alerts): "
        f"{_hours(data['time_to_restore_hours'])}"
        + (f", {data['still_open']} still open" if data["still_open"] else ""),
    ]
    if data["staleness_days"] is None:
        lines.append("  production data: no production model yet")
    else:
        lines.append(
            f"  production data: newest from {data['newest_data']}, "
            f"{data['staleness_days']:.1f} days old"
        )
    return lines


def _hours(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 60:.0f} min" if value < 1 else f"{value:.1f} h"
