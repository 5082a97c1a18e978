"""Traffic and performance figures read from the real prediction log and feedback table."""

from __future__ import annotations

import pytest

from keel.project import Project
from keel.ui.readers import feedback_labels
from keel.ui.traffic import log_files, performance_series, traffic_series, traffic_summary
from tests.ui.demo import Demo


@pytest.fixture
def project(demo: Demo) -> Project:
    """The demo project, opened."""
    return Project.open(demo.root)


def test_last_hour_counts_latency_and_fallbacks(project: Project, demo: Demo) -> None:
    """66 of the 200 demo predictions fall in the last hour; one of them used the fallback."""
    since = demo.built_at - 3600
    with project:
        traffic = traffic_summary(log_files(project, since), since, demo.built_at)
    assert traffic.requests == 66
    assert traffic.fallback_rate == pytest.approx(1 / 66)
    assert traffic.p50_ms is not None and 2.0 <= traffic.p50_ms <= traffic.p99_ms <= 8.0


def test_hourly_series_covers_every_prediction(project: Project, demo: Demo) -> None:
    """The hourly request counts add up to all 200 predictions of the last day."""
    since = demo.built_at - 86_400
    with project:
        series = traffic_series(log_files(project, since), since)
    assert sum(count for _, count in series["requests"]) == 200


def test_realised_accuracy_joins_feedback_by_prediction_id(project: Project, demo: Demo) -> None:
    """100 predictions got feedback and a quarter of them matched the logged output."""
    since = demo.built_at - 86_400
    with project:
        found = performance_series(
            log_files(project, since), since, feedback_labels(project, since - 60)
        )
    labelled = sum(n for _, n in found["labelled"])
    correct = sum(
        a * n for (_, a), (_, n) in zip(found["realised"], found["labelled"], strict=True)
    )
    assert labelled == 100
    assert correct / labelled == pytest.approx(0.25)
    assert all(0.7 <= value <= 0.9 for _, value in found["estimated"])


def test_empty_log_has_no_traffic() -> None:
    """Without segments there is nothing to count, and no rate is made up."""
    traffic = traffic_summary([], 0.0, 3600.0)
    assert (traffic.requests, traffic.p99_ms, traffic.fallback_rate) == (0, None, None)
    assert performance_series([], 0.0, [("a", "1")]) == {
        "estimated": [],
        "realised": [],
        "labelled": [],
    }
