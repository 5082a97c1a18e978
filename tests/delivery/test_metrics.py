"""Delivery metrics: the pure measures on hand-built histories, then `keel report delivery`
on a real project whose history was made by real deploys and a real rollback."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from keel.delivery.deployments import rollback
from keel.delivery.metrics import Incident, Trained, changes_of, delivery_metrics
from keel.project import Project
from keel.training import Registry
from keel.training.versions import StatusEvent
from tests.serving.helpers import import_fitted

H, DAY = 3600.0, 86400.0
NOW = 1_800_000_000.0


def _event(version: int, source: str | None, to: str, at: float, reason: str = "") -> StatusEvent:
    return StatusEvent(version, source, to, NOW - at, "alice", reason or "deploy", False)


# Oldest first: v1 straight to production; v2 as canary, promoted; v3 as canary, rolled
# back by its guards; v4 to production, then a person rolls back to v2.
HISTORY = [
    _event(1, "candidate", "production", 20 * DAY),
    _event(2, "candidate", "canary", 10 * DAY),
    _event(2, "canary", "production", 10 * DAY - 2 * H, "canary: guards held"),
    _event(1, "production", "archived", 10 * DAY - 2 * H),
    _event(3, "candidate", "canary", 5 * DAY),
    _event(3, "canary", "archived", 5 * DAY - H, "canary rolled back: error rate 0.2"),
    _event(4, "candidate", "production", 2 * DAY),
    _event(2, "archived", "production", 2 * DAY - 3 * H, "rollback: v4 is wrong on weekends"),
    _event(4, "production", "archived", 2 * DAY - 3 * H),
]
TRAINED = {
    1: Trained(NOW - 21 * DAY, data_published_at=NOW - 22 * DAY),
    2: Trained(NOW - 11 * DAY, data_published_at=NOW - 12 * DAY, data_end="2026-12-01"),
    3: Trained(NOW - 6 * DAY),
    4: Trained(NOW - 3 * DAY, data_published_at=NOW - 4 * DAY),
}


def test_a_change_is_a_version_starting_to_serve_production_traffic() -> None:
    """Four changes: a canary's promotion completes its change and a rollback restores an
    older version, so neither counts again."""
    changes = changes_of(HISTORY)
    assert [c.version for c in changes] == [1, 2, 3, 4]
    assert changes[1].production_at == NOW - 10 * DAY + 2 * H
    assert changes[2].production_at is None


def test_a_guard_rollback_and_a_manual_rollback_are_both_failed_changes() -> None:
    """v3 (canary rolled back) and v4 (replaced by `keel rollback`) failed: 2 of 4."""
    found = delivery_metrics(HISTORY, TRAINED, [], production=2, now=NOW)
    failed = {c.version: c.failed_at for c in changes_of(HISTORY) if c.failed_at is not None}
    assert failed == {3: NOW - 5 * DAY + H, 4: NOW - 2 * DAY + 3 * H}
    assert (found.changes, found.failures, found.change_failure_rate) == (4, 2, 0.5)
    assert found.deployments_per_week == pytest.approx(4 / (30 / 7))


def test_lead_time_is_the_median_of_each_leg_over_the_changes_that_reached_production() -> None:
    """v1, v2 and v4 reached production; each leg's median is taken over them."""
    found = delivery_metrics(HISTORY, TRAINED, [], production=2, now=NOW)
    data_to_trained = [24.0, 24.0, 24.0]  # each published a day before it was trained
    trained_to_production = [24.0, 24.0 + 22.0, 24.0]  # v2 waited in canary 2 h less
    assert found.lead_times == 3
    assert found.lead_time_hours == {
        "data_to_trained": pd.Series(data_to_trained).median(),
        "trained_to_production": pd.Series(trained_to_production).median(),
        "total": pd.Series([48.0, 70.0, 48.0]).median(),
    }


def test_time_to_restore_ends_at_the_resolution_or_the_rollback_whichever_is_first() -> None:
    """An alert resolved after 5 h, one ended by the rollback 1 h after it opened, and one
    still open: median 3 h over two, one open."""
    incidents = [
        Incident("model_load_failed", NOW - 8 * DAY, NOW - 8 * DAY + 5 * H),
        Incident("canary_error_rate", NOW - 5 * DAY, None),  # the guard rollback ends it
        Incident("latency", NOW - 1 * DAY, None),
    ]
    found = delivery_metrics(HISTORY, TRAINED, incidents, production=2, now=NOW)
    assert (found.restored, found.still_open) == (2, 1)
    assert found.time_to_restore_hours == pytest.approx(pd.Series([5.0, 1.0]).median())


def test_staleness_is_the_age_of_the_newest_data_the_production_model_saw() -> None:
    """v2's training data ends on 2026-12-01: its age; without an end, the publish time."""
    found = delivery_metrics(HISTORY, TRAINED, [], production=2, now=NOW)
    end = pd.Timestamp("2026-12-01", tz="UTC").timestamp()
    assert found.staleness_days == pytest.approx((NOW - end) / DAY)
    assert found.newest_data == "2026-12-01T00:00:00+00:00"
    only_published = delivery_metrics(HISTORY, TRAINED, [], production=4, now=NOW)
    assert only_published.staleness_days == pytest.approx(4.0)


def test_the_window_leaves_out_older_changes_and_incidents() -> None:
    """A 7-day window holds v3 and v4 only: two changes, both failed."""
    found = delivery_metrics(HISTORY, TRAINED, [], production=2, now=NOW, window_days=7)
    assert (found.changes, found.failures) == (2, 2)
    assert found.deployments_per_week == pytest.approx(2.0)


def test_an_empty_history_reports_no_rate_rather_than_zero() -> None:
    """No changes: a failure rate of 'none' (not 0%), and no staleness without production."""
    found = delivery_metrics([], {}, [], production=None, now=NOW)
    assert (found.changes, found.change_failure_rate, found.staleness_days) == (0, None, None)


def _keel(root: Path, *args: str) -> str:
    command = [sys.executable, "-m", "keel", *args, "-p", str(root)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_keel_report_delivery_reads_real_deploys_and_a_real_rollback(project: Project) -> None:
    """Two real deploys and a real rollback: two changes, one failed, and the lead time
    from training to production that the events table itself gives."""
    registry = Registry(project.store)
    for seed in range(2):
        import_fitted(project, project.root, seed)
        time.sleep(0.05)
        registry.transition(seed + 1, "production", "alice", f"deploy {seed + 1}")
    rollback(project, "v2 answers wrong", "carol")
    report = json.loads(_keel(project.root, "report", "delivery", "--json"))
    human = _keel(project.root, "report", "delivery")

    with project.store.engine.connect() as connection:
        events = pd.read_sql("SELECT * FROM keel_model_events", connection)
        versions = pd.read_sql("SELECT version, created_at FROM keel_model_versions", connection)
    deployed = events[(events.to_status == "production") & (events.from_status == "candidate")]
    legs = deployed.merge(versions, on="version").eval("(at - created_at) / 3600")
    assert (report["changes"], report["failures"], report["change_failure_rate"]) == (2, 1, 0.5)
    assert report["lead_time_hours"]["trained_to_production"] == pytest.approx(legs.median())
    assert "deployments: 2" in human and "change failure rate: 50% (1 rolled back)" in human
