"""The outage log's decisions: first failure with its cause, one summary per interval,
one recovery line; driven by a fake clock, with no I/O."""

from __future__ import annotations

import logging

from keel.serving.outages import Outage


def test_the_first_failure_is_logged_with_its_cause() -> None:
    """The first failure of an outage gives an ERROR line naming the error."""
    line = Outage("feature lookups", every_s=30).failed("connection refused", now=0.0)
    assert line is not None and line.level == logging.ERROR
    assert line.text == "feature lookups are failing: connection refused"


def test_failures_within_the_interval_are_silent_then_summarised_with_their_count() -> None:
    """Failures after the first log nothing until the interval is over; then one line
    counts them and names the last error."""
    outage = Outage("feature lookups", every_s=30)
    outage.failed("first", now=0.0)
    quiet = [outage.failed(f"error {i}", now=i * 0.1) for i in range(1, 250)]
    summary = outage.failed("last", now=30.0)
    assert quiet == [None] * 249
    assert summary is not None and summary.level == logging.ERROR
    assert summary.text == "250 feature lookups failed in the last 30 s: last"


def test_recovery_is_logged_once() -> None:
    """The first success after failures logs the recovery with the total; later ones and
    successes without an outage log nothing."""
    outage = Outage("feature lookups", every_s=30)
    assert outage.succeeded(now=0.0) is None
    for i in range(5):
        outage.failed("refused", now=1.0 + i)
    recovered = outage.succeeded(now=12.0)
    assert recovered is not None
    assert recovered.text == "feature lookups recovered after 11 s (5 failed; last error: refused)"
    assert outage.succeeded(now=13.0) is None


def test_a_new_outage_after_recovery_is_logged_again_from_the_start() -> None:
    """After a recovery the next failure is a first failure again, with its cause."""
    outage = Outage("feature lookups", every_s=30)
    outage.failed("refused", now=0.0)
    outage.succeeded(now=1.0)
    line = outage.failed("timed out", now=2.0)
    assert line is not None and line.text == "feature lookups are failing: timed out"
