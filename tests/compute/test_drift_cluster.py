"""Drift of a window split into Parquet partitions, sketched per partition on the real Dask
cluster and merged, equals ``compare_frame`` of the same rows in one frame (read by
pandas): every column's test, statistic, p-value, effect and decision.

Tolerance: 1e-9 relative on the floating numbers. The counts are integers, so the merged
sketch is exact, and the MMD sample is the same rows; only summation order could differ.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from keel.compute.dask import DaskEngine
from keel.data.partitions import Table, plan_partitions
from keel.monitoring.cluster import compare_partitions
from keel.monitoring.drift import compare_frame
from keel.monitoring.reference import Reference
from keel.monitoring.results import DriftReport, DriftSettings
from tests.compute.conftest import Cluster

SETTINGS = DriftSettings(tests=("ks", "chi2", "psi", "mmd"), permutations=50)


def _frame(rows: int, seed: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    plans = rng.choice(["basic", "plus", "pro"], rows, p=[0.5 - shift / 2, 0.3, 0.2 + shift / 2])
    frame = pd.DataFrame(
        {
            "amount": rng.normal(50 + 10 * shift, 10, rows),
            "visits": rng.poisson(3, rows),
            "plan": plans,
        }
    )
    frame.loc[rng.choice(rows, rows // 50, replace=False), "amount"] = np.nan
    return frame


@pytest.fixture(scope="module")
def engine(cluster: Cluster) -> Iterator[DaskEngine]:
    """A client of the test cluster."""
    opened = DaskEngine.connect(cluster.address, 30)
    try:
        yield opened
    finally:
        opened.close()


def _window(folder: Path, sizes: list[int], shift: float) -> tuple[Table, pd.DataFrame]:
    folder.mkdir()
    for i, rows in enumerate(sizes):
        _frame(rows, seed=10 + i, shift=shift).to_parquet(folder / f"part-{i}.parquet")
    files = sorted(folder.glob("*.parquet"))
    whole = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    return Table("parquet", tuple(str(f) for f in files)), whole


def _same(got: DriftReport, expected: DriftReport) -> None:
    assert got.rows == expected.rows
    assert [(c.column, c.test, c.decision, c.rows, c.nulls) for c in got.columns] == [
        (c.column, c.test, c.decision, c.rows, c.nulls) for c in expected.columns
    ]
    for mine, theirs in zip(got.columns, expected.columns, strict=True):
        for field in ("statistic", "p_value", "effect", "p_adjusted"):
            assert getattr(mine, field) == pytest.approx(getattr(theirs, field), rel=1e-9)


def test_a_big_window_merged_from_partition_sketches_equals_the_local_report(
    engine: DaskEngine, tmp_path: Path
) -> None:
    """25,000 shifted rows (past exact_rows: sketches and an MMD sample) in three files cut
    into 8,000-row partitions give the local report, and the shift is found."""
    reference = Reference.from_frame(_frame(4_000, seed=1, shift=0.0), sample=2_000)
    table, whole = _window(tmp_path / "window", [12_000, 9_000, 4_000], shift=0.3)
    partitions = plan_partitions(table, 8_000)
    assert len(partitions) == 5
    got = compare_partitions(engine, reference, partitions, SETTINGS)
    expected = compare_frame(reference, whole, SETTINGS)
    _same(got, expected)
    assert {c.column for c in expected.columns if c.decision == "drift"} >= {"amount", "plan"}


def test_a_small_window_on_the_cluster_takes_the_exact_tests_as_locally(
    engine: DaskEngine, tmp_path: Path
) -> None:
    """A 3,000-row window in two files (under exact_rows: the exact KS test on raw rows)
    gives the local report, with no drift found where none was planted."""
    reference = Reference.from_frame(_frame(4_000, seed=1, shift=0.0), sample=2_000)
    table, whole = _window(tmp_path / "small", [1_800, 1_200], shift=0.0)
    partitions = plan_partitions(table, 1_000)
    got = compare_partitions(engine, reference, partitions, SETTINGS)
    expected = compare_frame(reference, whole, SETTINGS)
    _same(got, expected)
    assert not any(c.decision == "drift" for c in expected.columns)
