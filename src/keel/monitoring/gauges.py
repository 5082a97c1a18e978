"""What the worker knows, as Prometheus gauges for Grafana: drift per column, realised
and estimated performance, open alerts by severity, running rollouts and the delivery
measures, refreshed after every cycle.

``keel worker --metrics-port N`` serves them at ``/metrics`` on that port (no key: bind it
where only the scraper reaches it), beside two probes: ``/healthz`` answers 200 while the
process lives, ``/readyz`` 200 while the worker keeps its schedule (a cycle finished within
the last ``READY_INTERVALS`` intervals, and it could read the metadata store) and 503 with
the reason otherwise. ``samples`` and ``unready`` are pure: readings in, answers out.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

if TYPE_CHECKING:
    from keel.project import Project
    from keel.scrape import Answer, ScrapeServer

__all__ = ["READY_INTERVALS", "WorkerGauges", "samples", "unready"]

READY_INTERVALS = 3  # /readyz fails once no cycle has finished for this many intervals

Sample = tuple[str, dict[str, str], float]

_HELP = {
    "keel_worker_cycle_ok": ("1 when the last cycle ran, 0 when it failed", ()),
    "keel_worker_cycle_timestamp_seconds": ("when the last cycle ended", ()),
    "keel_drift_window_rows": ("rows in the drift window", ()),
    "keel_drift_drifted_columns": ("columns with a drift verdict", ()),
    "keel_drift_statistic": ("each column's test statistic", ("column", "test")),
    "keel_drift_effect": ("each column's effect size", ("column", "test")),
    "keel_drift_drifted": ("1 when the column's verdict is drift", ("column",)),
    "keel_performance": ("realised metric of the window", ("metric",)),
    "keel_performance_estimated": ("estimated metric before labels mature", ("metric",)),
    "keel_alerts_open": ("open or acknowledged alerts", ("severity",)),
    "keel_rollout_share_percent": ("traffic share of a running rollout", ("kind", "version")),
    "keel_delivery_deployments_per_week": ("changes per week over the window", ()),
    "keel_delivery_change_failure_rate": ("share of changes rolled back", ()),
    "keel_delivery_lead_time_hours": ("median lead time, data to production", ()),
    "keel_delivery_time_to_restore_hours": ("median time to restore", ()),
    "keel_delivery_staleness_days": ("age of the newest data production saw", ()),
}
_SEVERITIES = ("info", "warning", "critical")


def samples(
    cycle: Mapping[str, Any],
    open_alerts: Iterable[str],
    rollouts: Iterable[tuple[str, int, float]],
    delivery: Mapping[str, Any] | None,
    now: float,
) -> list[Sample]:
    """Gauge values from one cycle's result (``keel worker --json``'s), the severities of
    the open alerts, the running rollouts (kind, version, share) and delivery measures."""
    found: list[Sample] = [
        ("keel_worker_cycle_ok", {}, 1.0 if cycle.get("ok") else 0.0),
        ("keel_worker_cycle_timestamp_seconds", {}, now),
    ]
    found += _drift(cycle.get("drift") or {})
    found += _performance(cycle.get("performance") or {})
    severities = list(open_alerts)
    found += [
        ("keel_alerts_open", {"severity": s}, float(severities.count(s))) for s in _SEVERITIES
    ]
    found += [
        ("keel_rollout_share_percent", {"kind": kind, "version": str(version)}, share)
        for kind, version, share in rollouts
    ]
    return found + _delivery(delivery or {})


def _drift(report: Mapping[str, Any]) -> list[Sample]:
    if not report:
        return []
    found: list[Sample] = [
        ("keel_drift_window_rows", {}, float(report.get("rows", 0))),
        ("keel_drift_drifted_columns", {}, float(len(report.get("drifted", ())))),
    ]
    for column in report.get("columns", ()):
        labels = {"column": column["column"], "test": column["test"]}
        found.append(("keel_drift_statistic", labels, float(column["statistic"])))
        found.append(("keel_drift_effect", labels, float(column["effect"])))
        drifted = 1.0 if column["decision"] == "drift" else 0.0
        found.append(("keel_drift_drifted", {"column": column["column"]}, drifted))
    return found


def _performance(metrics: Mapping[str, Any]) -> list[Sample]:
    found: list[Sample] = []
    for name, value in metrics.items():
        if not isinstance(value, float) or isinstance(value, bool):
            continue
        if name.startswith("estimated_"):
            labels = {"metric": name.removeprefix("estimated_")}
            found.append(("keel_performance_estimated", labels, value))
        else:
            found.append(("keel_performance", {"metric": name}, value))
    return found


def _delivery(measures: Mapping[str, Any]) -> list[Sample]:
    values = {
        "keel_delivery_deployments_per_week": measures.get("deployments_per_week"),
        "keel_delivery_change_failure_rate": measures.get("change_failure_rate"),
        "keel_delivery_lead_time_hours": (measures.get("lead_time_hours") or {}).get("total"),
        "keel_delivery_time_to_restore_hours": measures.get("time_to_restore_hours"),
        "keel_delivery_staleness_days": measures.get("staleness_days"),
    }
    return [(name, {}, float(value)) for name, value in values.items() if value is not None]


def unready(
    now: float, cycled_at: float | None, store_ok: bool, every: float, intervals: int
) -> str | None:
    """Why a worker cycling every ``every`` seconds is not ready, or None when it is: no
    cycle finished yet, the last one could not read the store, or it is too long ago."""
    if cycled_at is None:
        return "no cycle has finished yet"
    if not store_ok:
        return "the last cycle could not read the metadata store"
    if now - cycled_at > intervals * every:
        return (
            f"the last cycle finished {now - cycled_at:.0f} s ago, "
            f"more than {intervals} intervals of {every:g} s"
        )
    return None


class WorkerGauges:
    """The gauges in their own registry, served on a port with the probes. Each refresh
    swaps in a whole new set of readings at once, so a scrape never sees half a cycle."""

    def __init__(self, every: float = 60.0) -> None:
        self.registry = CollectorRegistry()
        self._samples: list[Sample] = []
        self.registry.register(self)
        self.every = every
        self.cycled_at: float | None = None  # time.monotonic() when the last cycle ended
        self.store_ok = False

    def serve(self, host: str, port: int) -> ScrapeServer:
        """``/metrics``, ``/healthz`` and ``/readyz`` on ``host:port``, on a thread; a port
        that cannot be bound is one sentence."""
        from keel.errors import MonitoringError
        from keel.scrape import ScrapeServer, bind_failure

        routes = {"/metrics": self._metrics, "/healthz": _alive, "/readyz": self._ready}
        try:
            server = ScrapeServer(host, port, routes)
        except OSError as error:
            raise MonitoringError(bind_failure(error, host, port, "--metrics-port")) from None
        server.start()
        return server

    def _metrics(self) -> Answer:
        return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)

    def _ready(self) -> Answer:
        reason = unready(
            time.monotonic(), self.cycled_at, self.store_ok, self.every, READY_INTERVALS
        )
        body = {"ready": reason is None, "reason": reason}
        return (200 if reason is None else 503), "application/json", json.dumps(body).encode()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The prometheus_client collector protocol: one family per gauge name."""
        current = self._samples
        for name, (text, labels) in _HELP.items():
            family = GaugeMetricFamily(name, text, labels=list(labels))
            for found, values, value in current:
                if found == name:
                    family.add_metric([values[label] for label in labels], value)
            yield family

    def update(self, found: list[Sample]) -> None:
        """Replace every reading with ``found`` (a column gone is gone)."""
        self._samples = list(found)
        self.cycled_at, self.store_ok = time.monotonic(), True

    def failed(self) -> None:
        """The cycle or the store failed: say so, and keep the last readings."""
        kept = [sample for sample in self._samples if sample[0] != "keel_worker_cycle_ok"]
        self._samples = [("keel_worker_cycle_ok", {}, 0.0), *kept]
        self.cycled_at, self.store_ok = time.monotonic(), False

    def refresh(self, project: Project, cycle: Mapping[str, Any], now: float) -> None:
        """Read the alerts, rollouts and delivery measures, and update from ``cycle``."""
        from keel.delivery.metrics import read_delivery
        from keel.delivery.staging import staged
        from keel.monitoring.alerts.book import AlertBook

        alerts = [a.severity for a in AlertBook(project.store).list() if a.status != "resolved"]
        rollouts = [(r.kind, r.version, r.share) for r in staged(project)]
        delivery = read_delivery(project, now=now).to_dict()
        self.update(samples(cycle, alerts, rollouts, delivery, now))


def _alive() -> Answer:
    return 200, "application/json", b'{"status":"alive"}'
