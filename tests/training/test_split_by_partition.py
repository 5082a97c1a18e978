"""The split and the input schema of rows held in partitions (as on Dask workers) equal
those of the same rows in one frame: ``random_split`` and ``infer_schema`` are the
independent computation each is checked against."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd
import pytest

from keel.errors import TrainingDataError
from keel.training.inputs import infer_schema
from keel.training.split import (
    held_out,
    held_out_positions,
    kth_key,
    random_split,
    time_held_out,
    time_keys,
    time_split,
)
from keel.training.workers import merged_schema


@pytest.mark.parametrize(
    ("lengths", "test_size", "seed"),
    [
        ([100], 0.2, 0),
        ([37, 0, 250, 13, 1], 0.25, 7),
        ([1, 1], 0.9, 3),
        ([500, 499, 501], 0.1, 42),
    ],
)
def test_each_partition_holds_out_the_rows_random_split_holds_out(
    lengths: list[int], test_size: float, seed: int
) -> None:
    """Each partition's mask, from its global start, picks exactly the rows of
    ``random_split`` of all of them that fall in it, and the masks cover every row once."""
    rows = sum(lengths)
    _, expected = random_split(rows, test_size, seed)
    positions = held_out_positions(rows, test_size, seed)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    masks = [held_out(positions, s, s + n) for s, n in zip(starts, lengths, strict=True)]
    assert [len(mask) for mask in masks] == lengths
    np.testing.assert_array_equal(np.flatnonzero(np.concatenate(masks)), expected)


def _table(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "amount": rng.gamma(2.0, 10.0, rows),
            "visits": rng.integers(0, 50, rows),
            "flag": rng.uniform(size=rows) < 0.3,
            "plan": rng.choice(["basic", "plus", "pro", "team"], rows),
        }
    )
    frame.loc[rng.choice(rows, 3, replace=False), "amount"] = np.nan
    frame.loc[rng.choice(rows, 2, replace=False), "plan"] = None
    return frame


@pytest.mark.parametrize("cuts", [[50], [0, 10, 11, 80], [1, 2, 3, 4, 5]])
def test_merged_partition_schemas_are_the_whole_tables(cuts: list[int]) -> None:
    """``infer_schema`` per partition (empty ones too), merged, is ``infer_schema`` of
    the whole table: null flags, ranges and the union of categories."""
    table = _table(100, 1)
    bounds = [0, *cuts, len(table)]
    parts = [table.iloc[a:b] for a, b in pairwise(bounds)]
    assert merged_schema([infer_schema(part) for part in parts]) == infer_schema(table)


def test_too_many_categories_across_partitions_are_refused() -> None:
    """Text values that are few per partition but over the limit together are refused
    with the sentence a whole table gets."""
    parts = [pd.DataFrame({"id": [f"u{i}" for i in range(k, k + 600)]}) for k in (0, 600)]
    with pytest.raises(TrainingDataError, match="column 'id' has 1200 distinct text values"):
        merged_schema([infer_schema(part) for part in parts])


def _times(kind: str, rows: int, seed: int) -> pd.Series:
    """Times with ties (also across partitions) and missing values, of one ``kind``;
    none missing for times with a zone, which NumPy sorts as objects (where a missing
    one compares with nothing, so ``time_split`` has no defined order for it)."""
    rng = np.random.default_rng(seed)
    whole = rng.integers(0, rows // 4, rows)
    if kind == "timestamp":
        times = pd.Series(pd.Timestamp("2026-01-01") + pd.to_timedelta(whole, "h"))
    elif kind == "utc":
        times = pd.Series(pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(whole, "s"))
    else:
        times = pd.Series((whole - rows / 8) * 0.5)  # negative, zero and positive numbers
    if kind != "utc":
        times[rng.choice(rows, 5, replace=False)] = None
    return times


@pytest.mark.parametrize("kind", ["timestamp", "utc", "number"])
@pytest.mark.parametrize(("lengths", "test_size"), [([300], 0.2), ([90, 0, 120, 1, 89], 0.3)])
def test_each_partition_holds_out_the_rows_time_split_holds_out(
    kind: str, lengths: list[int], test_size: float
) -> None:
    """The key of the first held-out row, found by counting keys per partition, and each
    partition's held-out rows from it give ``time_split``'s test rows exactly, ties and
    missing times included."""
    times = _times(kind, sum(lengths), seed=len(lengths))
    _, expected = time_split(times, test_size)
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    keys = [time_keys(times.iloc[a:b]) for a, b in pairwise(bounds)]
    cut = sum(lengths) - len(expected)
    cutoff = kth_key(lambda c: sum(np.searchsorted(np.sort(k), c, "right") for k in keys), cut)
    ties_kept = cut - sum(int((k < cutoff).sum()) for k in keys)
    firsts = np.concatenate([[0], np.cumsum([int((k == cutoff).sum()) for k in keys])])
    masks = [
        time_held_out(k, cutoff, int(f), ties_kept) for k, f in zip(keys, firsts, strict=False)
    ]
    np.testing.assert_array_equal(np.flatnonzero(np.concatenate(masks)), expected)
