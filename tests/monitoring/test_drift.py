"""Drift that is right: the issue's seeded correctness targets and the verdict's shape."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from keel.monitoring.drift import compare, compare_frame
from keel.monitoring.reference import Reference
from keel.monitoring.results import DriftSettings

from .synthetic import SHIFTED, population, population_sketch


@pytest.fixture(scope="module")
def reference() -> Reference:
    """Reference statistics of 20,000 unshifted rows of the 25-column population."""
    return Reference.from_frame(population(20_000, seed=1))


@pytest.fixture(scope="module")
def small_reference() -> Reference:
    """A 5,000-row reference, for the many-repetition tests."""
    return Reference.from_frame(population(5_000, seed=2))


@pytest.mark.parametrize(("rows", "seeds"), [(1_000, 30), (5_000, 20)])
def test_five_planted_shifts_are_found_with_no_false_columns_in_every_window(
    reference: Reference, rows: int, seeds: int
) -> None:
    """Shifts in 5 of 25 columns (incl. an unseen category and a share 0.40 -> 0.30) are
    all detected, and nothing else is, in every seeded window from 1,000 rows up. (At
    1,000 rows the share move's power is about 99%: a rare miss is chance, not a bug.)"""
    found = [
        sorted(compare_frame(reference, population(rows, seed, shift=True)).drifted)
        for seed in range(seeds)
    ]
    assert found == [sorted(SHIFTED)] * seeds


def test_at_500_rows_the_share_move_is_at_the_edge_of_power(reference: Reference) -> None:
    """500 rows: the four large shifts are found in all 30 seeded windows and no false
    column in any. The 0.40 -> 0.30 share (chi-square power about 85-90% at Holm's
    0.01/21) is found in at least three windows of four; where it is missed, its verdict
    says the window could not see the configured effect, never that nothing moved."""
    reports = [compare_frame(reference, population(500, seed, shift=True)) for seed in range(30)]
    large = sorted(set(SHIFTED) - {"c0"})
    assert all(sorted(set(r.drifted) - {"c0"}) == large for r in reports)
    share = [r.column("c0").decision for r in reports]
    assert share.count("drift") >= 0.75 * len(share)
    assert set(share) <= {"drift", "insufficient_data"}


@pytest.mark.parametrize("rows", [50, 500, 5_000])
def test_false_alarm_rate_on_unshifted_windows_is_at_most_five_percent(
    small_reference: Reference, rows: int
) -> None:
    """Over 100 seeded unshifted windows, at most 5 raise any drifted column."""
    alarms = sum(
        bool(compare_frame(small_reference, population(rows, seed=1000 + i)).drifted)
        for i in range(100)
    )
    assert alarms <= 5


def test_a_negligible_shift_in_a_million_rows_does_not_alert(reference: Reference) -> None:
    """+0.02 sd in every numeric column of 1,000,000 rows: significant, but gated out."""
    window = population_sketch(reference.layout, 1_000_000, seed=5, tiny_shift=0.02)
    report = compare(reference, window)
    assert report.drifted == []
    assert any(c.p_adjusted <= report.alpha for c in report.columns)  # the gate did the work


def test_a_tiny_window_reports_insufficient_data_not_no_drift(reference: Reference) -> None:
    """20 unshifted rows cannot show the configured effect: the verdict says so."""
    report = compare_frame(reference, population(20, seed=3))
    assert report.decision == "insufficient_data"
    assert {c.decision for c in report.columns} == {"insufficient_data"}


def test_a_large_shift_is_found_even_in_a_small_window(reference: Reference) -> None:
    """Insufficient power for small effects does not hide a large one."""
    report = compare_frame(reference, population(60, seed=4, shift=True))
    assert report.decision == "drift"
    assert "n1" in report.drifted  # sd doubled


def test_an_all_null_window_column_is_untestable(reference: Reference) -> None:
    """A column that is null in every window row is listed as untestable, with why."""
    window = population(500, seed=5)
    window["n3"] = np.nan
    result = compare_frame(reference, window).column("n3")
    assert result.decision == "untestable"
    assert result.nulls == 500 and "null" in (result.note or "")


def test_each_result_names_its_statistic_p_value_effect_and_what_moved(
    reference: Reference,
) -> None:
    """A drifted categorical column names the unseen bucket as what moved most."""
    result = compare_frame(reference, population(2_000, seed=6, shift=True)).column("c1")
    assert result.test == "chi2" and result.effect_name == "total_variation"
    assert result.statistic > 0 and 0 <= result.p_adjusted <= 1e-6
    assert result.decision == "drift"
    assert result.moved[0].bucket == "__unseen__"
    assert result.moved[0].window == pytest.approx(0.10, abs=0.03)


def test_a_numeric_result_reports_the_bins_that_moved(reference: Reference) -> None:
    """A mean shift up moves mass into the top reference-quantile bins."""
    result = compare_frame(reference, population(2_000, seed=7, shift=True)).column("n0")
    assert result.test == "ks" and result.psi is not None and result.psi > 0.1
    assert result.moved[0].change > 0 and result.moved[0].bucket.startswith(("[", ">="))


def test_model_output_drift_is_tested_as_an_output(reference: Reference) -> None:
    """Columns named output.* are tested and labelled as the model's outputs."""
    rng = np.random.default_rng(8)
    ref = Reference.from_frame({"output.probability": rng.beta(2, 5, 5000)})
    window = {"output.probability": rng.beta(3, 4, 800)}
    result = compare_frame(ref, window).column("output.probability")
    assert result.role == "output" and result.decision == "drift"


@pytest.mark.parametrize("correction", ["holm", "bonferroni", "fdr", "none"])
def test_the_correction_is_configurable(reference: Reference, correction: str) -> None:
    """Each correction gives p_adjusted >= p, and 'none' leaves p unchanged."""
    settings = DriftSettings(correction=correction)  # type: ignore[arg-type]
    report = compare_frame(reference, population(500, seed=9), settings)
    for column in report.columns:
        assert column.p_adjusted >= column.p_value - 1e-15
        if correction == "none":
            assert column.p_adjusted == column.p_value


def test_mmd_is_one_more_test_in_the_family(reference: Reference) -> None:
    """With mmd on, a multivariate result joins the per-column ones."""
    settings = DriftSettings(tests=("ks", "chi2", "mmd"), permutations=100)
    report = compare_frame(reference, population(500, seed=10, shift=True), settings)
    mmd = [c for c in report.columns if c.test == "mmd"]
    assert len(mmd) == 1 and mmd[0].role == "multivariate"
    assert mmd[0].p_value <= 0.01


def test_psi_can_decide_numeric_columns(reference: Reference) -> None:
    """With psi instead of ks, numeric columns are judged on PSI over quantile bins."""
    settings = DriftSettings(tests=("psi", "chi2"))
    report = compare_frame(reference, population(5_000, seed=11, shift=True), settings)
    assert report.column("n0").test == "psi"
    assert sorted(report.drifted) == sorted(SHIFTED)


def test_a_stricter_effect_gate_turns_a_real_shift_into_a_small_one(reference: Reference) -> None:
    """Raising min_effect above a column's effect turns drift into a small shift."""
    window = population(5_000, seed=12, shift=True)
    loose = compare_frame(reference, window).column("n1")
    strict = dataclasses.replace(DriftSettings(), min_effect={"ks": 0.5, "chi2": 0.5})
    assert loose.decision == "drift"
    assert compare_frame(reference, window, strict).column("n1").decision == "small_shift"
