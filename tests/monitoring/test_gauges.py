"""The worker's Prometheus gauges: the pure mapping, then a real `keel worker
--metrics-port` on the dashboard's demo project, scraped over HTTP."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from keel.monitoring.gauges import samples
from keel.project import Project
from tests.helpers import free_port
from tests.ui.demo import build_demo

CYCLE = {
    "ok": True,
    "drift": {
        "rows": 500,
        "drifted": ["income"],
        "columns": [
            {
                "column": "income",
                "test": "ks",
                "statistic": 0.31,
                "effect": 0.31,
                "decision": "drift",
            },
            {
                "column": "plan",
                "test": "chi2",
                "statistic": 2.5,
                "effect": 0.02,
                "decision": "no_drift",
            },
        ],
    },
    "performance": {
        "roc_auc": 0.71,
        "estimated_brier": 0.18,
        "labelled": 40,
        "labels_mature": True,
    },
}


def test_samples_name_each_column_metric_severity_and_rollout() -> None:
    """Drift per column, realised and estimated metrics apart, alerts counted by
    severity (zero included), one share per running rollout, and the delivery measures."""
    found = samples(
        CYCLE,
        ["critical", "warning", "critical"],
        [("canary", 4, 10.0)],
        {"change_failure_rate": 0.25, "lead_time_hours": {"total": 30.0}, "staleness_days": None},
        now=1000.0,
    )
    by = {(name, tuple(sorted(labels.items()))): value for name, labels, value in found}
    assert by[("keel_drift_drifted", (("column", "income"),))] == 1.0
    assert by[("keel_drift_drifted", (("column", "plan"),))] == 0.0
    assert by[("keel_drift_statistic", (("column", "plan"), ("test", "chi2")))] == 2.5
    assert by[("keel_performance", (("metric", "roc_auc"),))] == 0.71
    assert by[("keel_performance_estimated", (("metric", "brier"),))] == 0.18
    assert ("keel_performance", (("metric", "labelled"),)) not in by  # a count, not a metric
    assert [
        by[("keel_alerts_open", (("severity", s),))] for s in ("info", "warning", "critical")
    ] == [0, 1, 2]
    assert by[("keel_rollout_share_percent", (("kind", "canary"), ("version", "4")))] == 10.0
    assert by[("keel_delivery_change_failure_rate", ())] == 0.25
    assert by[("keel_delivery_lead_time_hours", ())] == 30.0
    assert ("keel_delivery_staleness_days", ()) not in by


def _scrape(url: str, deadline: float) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    while True:
        try:
            text = httpx.get(url, timeout=5).text
            families = list(text_string_to_metric_families(text))
            found = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in families
                for s in family.samples
            }
            if ("keel_worker_cycle_timestamp_seconds", ()) in found:
                return found
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the worker never published its gauges"
        time.sleep(0.2)


@pytest.mark.slow
def test_a_running_worker_serves_its_gauges(tmp_path: Path) -> None:
    """After its first cycle the worker's /metrics holds the open alerts by severity as
    the store counts them, and the demo's change failure rate (1 of 3 changes)."""
    root = tmp_path / "demo"
    root.mkdir()
    build_demo(root)
    port = free_port()
    command = [sys.executable, "-m", "keel", "worker", "--every", "1h", "--metrics-port",
               str(port), "-p", str(root)]  # fmt: skip
    worker = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        found = _scrape(f"http://127.0.0.1:{port}/metrics", time.monotonic() + 120)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
        assert worker.stderr is not None
        worker.stderr.close()
    with Project.open(root) as project, project.store.engine.connect() as connection:
        alerts = pd.read_sql("SELECT severity, status FROM keel_alerts", connection)
    open_now = alerts[alerts.status != "resolved"].severity.value_counts()
    for level in ("info", "warning", "critical"):
        gauge = found[("keel_alerts_open", (("severity", level),))]
        assert gauge == open_now.get(level, 0), level
    assert found[("keel_delivery_change_failure_rate", ())] == pytest.approx(1 / 3)
    assert found[("keel_worker_cycle_ok", ())] == 1.0
