"""DriftMonitor: the streaming form — update batch by batch, read the verdict."""

from __future__ import annotations

import numpy as np

from keel.monitoring.drift import compare_frame
from keel.monitoring.monitor import DriftMonitor
from keel.monitoring.reference import Reference

from .synthetic import SHIFTED, population


def _reference() -> Reference:
    return Reference.from_frame(population(5_000, seed=1))


def test_batches_give_the_same_verdict_as_the_whole_window() -> None:
    """Four updates of 250 rows judge exactly like one window of 1,000 rows."""
    reference = _reference()
    window = population(1_000, seed=2, shift=True)
    monitor = DriftMonitor(reference)
    for start in range(0, 1_000, 250):
        monitor.update(window.iloc[start : start + 250])
    assert monitor.report.to_dict() == compare_frame(reference, window).to_dict()
    assert monitor.drift_detected and sorted(monitor.report.drifted) == sorted(SHIFTED)


def test_reset_starts_an_empty_window() -> None:
    """After reset the monitor has no rows and cannot claim drift."""
    monitor = DriftMonitor(_reference()).update(population(500, seed=3, shift=True))
    monitor.reset()
    assert monitor.rows == 0
    assert monitor.report.decision == "insufficient_data"


def test_merged_segment_sketches_stand_in_for_raw_rows() -> None:
    """A window given as sketches (no raw rows) is judged on its bins."""
    reference = _reference()
    monitor = DriftMonitor(reference)
    for seed in (4, 5):
        monitor.merge_sketch(reference.layout.sketch(population(2_000, seed, shift=True)))
    assert sorted(monitor.report.drifted) == sorted(SHIFTED)


def test_a_big_window_drops_raw_values_and_stays_correct() -> None:
    """Past exact_rows the monitor keeps only sketches and still sees the shift."""
    rng = np.random.default_rng(6)
    reference = Reference.from_frame({"x": rng.normal(0, 1, 5_000)})
    monitor = DriftMonitor(reference)
    for _ in range(5):
        monitor.update({"x": rng.normal(0.5, 1, 5_000)})
    assert monitor.rows == 25_000
    assert monitor.report.drifted == ["x"]


def test_the_docstring_example_runs() -> None:
    """The example in DriftMonitor's docstring is a passing doctest."""
    import doctest

    import keel.monitoring.monitor

    assert doctest.testmod(keel.monitoring.monitor).failed == 0
