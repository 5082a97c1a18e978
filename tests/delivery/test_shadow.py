"""Shadow reports: agreement, error delta and the promotion verdict."""

from __future__ import annotations

from keel.delivery import ShadowCriteria, ShadowPair, compare

CRITERIA = ShadowCriteria(min_requests=10, min_agreement=0.9)


def test_agreeing_classifier_is_ready() -> None:
    """Identical labels on enough requests: ready for canary."""
    pairs = [
        ShadowPair("churn" if i % 3 else "stay", "churn" if i % 3 else "stay") for i in range(20)
    ]
    report = compare(pairs, "classification", CRITERIA)
    assert report.agreement == 1.0 and report.ready


def test_disagreement_blocks_promotion() -> None:
    """Agreement below the bar is reported with the figure."""
    pairs = [ShadowPair("a", "a" if i < 15 else "b") for i in range(20)]
    report = compare(pairs, "classification", CRITERIA)
    assert report.agreement == 0.75
    assert not report.ready and "agreement 75.0%" in report.reason


def test_too_few_requests_waits() -> None:
    """Below the minimum number of requests nothing is decided."""
    report = compare([ShadowPair(1.0, 1.0)] * 5, "regression", CRITERIA)
    assert not report.ready and "5/10" in report.reason


def test_shadow_failures_block_promotion() -> None:
    """A shadow that failed requests is not ready, and the failures are counted."""
    pairs = [ShadowPair("a", None if i == 3 else "a") for i in range(20)]
    report = compare(pairs, "classification", CRITERIA)
    assert report.errors == 1 and not report.ready


def test_regression_error_delta_in_standard_deviations() -> None:
    """A regressor off by half a standard deviation is not at parity."""
    pairs = [ShadowPair(float(i), float(i) + 0.5 * 5.766) for i in range(20)]
    report = compare(pairs, "regression", CRITERIA)
    assert report.error_delta is not None and 0.45 < report.error_delta < 0.55
    assert not report.ready


def test_accuracy_on_matured_labels() -> None:
    """With labels, both arms' accuracy is reported side by side."""
    pairs = [ShadowPair("a", "a", label="a"), ShadowPair("a", "b", label="b")] * 10
    report = compare(pairs, "classification", CRITERIA)
    assert (report.accuracy_production, report.accuracy_shadow) == (0.5, 1.0)


def test_latency_median() -> None:
    """The shadow's median latency is reported."""
    pairs = [ShadowPair("a", "a", shadow_latency_ms=float(i)) for i in range(1, 12)]
    assert compare(pairs, "classification", CRITERIA).latency_p50_ms == 6.0
