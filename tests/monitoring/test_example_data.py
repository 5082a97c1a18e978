"""Drift on the example project's data: the generator's planted drift, and none without it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from keel.examples import generate
from keel.monitoring.drift import compare_frame
from keel.monitoring.reference import Reference

DRIFTED = ["numeric_shift", "new_category", "category_share"]


def _halves(folder: Path, drift: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    generate(folder, rows=4_000, seed=42, drift=drift)
    customers = pd.read_csv(folder / "data" / "customers.csv").sort_values("updated_at")
    half = len(customers) // 2
    return customers.iloc[:half], customers.iloc[half:]


def test_ids_and_text_timestamps_are_not_tested(tmp_path: Path) -> None:
    """customer_id and the timestamp columns are mostly unique text: left out."""
    before, _ = _halves(tmp_path, [])
    assert sorted(Reference.from_frame(before).layout.columns) == [
        "age", "income", "monthly_charges", "plan", "region",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("drift", "expected"), [([], []), (DRIFTED, ["income", "monthly_charges", "plan", "region"])]
)
def test_the_generators_drift_is_found_and_nothing_else(
    tmp_path: Path, drift: list[str], expected: list[str]
) -> None:
    """Second-half customers vs first-half: the drifted columns (price follows plan), only."""
    before, after = _halves(tmp_path, drift)
    report = compare_frame(Reference.from_frame(before), after)
    assert sorted(report.drifted) == expected
