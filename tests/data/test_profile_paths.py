"""The cheaper ways profiling and uniqueness read a batch give pandas' answers: leading
rows read by row id (and not when rows were deleted or a column is named ``rowid``),
integer sums kept exact, few-valued columns summed per column, a sorted column's first
repeated values read by a pass that stops early. Expected numbers come from pandas."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from keel.data.batch import TABLE, Batch
from keel.data.profiling import TOP_LIMIT, TRIAGE_ROWS, profile
from keel.data.validation import Context, validate
from keel.schema import SourceConfig

NOW = datetime(2026, 6, 1)


def _tail_wide(n: int, wide: range) -> list[str]:
    """Three values, except one value per row at the positions in ``wide``."""
    return [f"w{i}" if i in wide else f"v{i % 3}" for i in range(n)]


def test_leading_rows_after_deleted_rows_are_the_rows_that_arrived_first() -> None:
    """With the first rows deleted, the leading rows are the ones now first in arrival
    order (not those whose row id is small): a column few-valued among the small row ids
    but many-valued in its true leading rows gets no exact count of its values, exactly
    as when the same rows are loaded without the deleted ones."""
    n, dropped = 60_000, 10_000
    frame = pd.DataFrame({"s": _tail_wide(n, range(TRIAGE_ROWS, TRIAGE_ROWS + dropped))})
    kept = frame.iloc[dropped:].reset_index(drop=True)
    with Batch.from_frame(frame) as batch:
        batch.con.execute(f"DELETE FROM {TABLE} WHERE rowid < {dropped}")
        deleted = profile(batch).column("s")
    with Batch.from_frame(kept) as batch:
        fresh = profile(batch).column("s")
    assert deleted is not None and fresh is not None
    assert deleted == fresh
    assert deleted.top == () and deleted.count == len(kept)
    assert abs(deleted.distinct - kept["s"].nunique()) <= 0.05 * kept["s"].nunique()


def test_a_column_named_rowid_does_not_choose_the_leading_rows() -> None:
    """A batch with its own ``rowid`` column (shuffled numbers) is triaged on its true
    leading rows: few-valued there, so its values are counted exactly (pandas' count)."""
    rng = np.random.default_rng(5)
    n = 60_000
    frame = pd.DataFrame(
        {
            "rowid": rng.permutation(n),
            "s": _tail_wide(n, range(TRIAGE_ROWS, n)),
        }
    )
    with Batch.from_frame(frame) as batch:
        column = profile(batch).column("s")
    assert column is not None
    assert column.distinct == frame["s"].nunique() > TOP_LIMIT
    assert column.top == ()


def test_few_valued_columns_counted_together_keep_nulls_out() -> None:
    """Columns counted in one GROUP BY, with nulls in different rows of each, get
    pandas' value counts (integers as text) and exact distinct numbers."""
    rng = np.random.default_rng(6)
    n = 80_000
    frame = pd.DataFrame(
        {
            "a": rng.choice(["x", "y", "z", None], n),
            "b": pd.array(rng.choice([1, 2, None], n), dtype="Int64"),
            "c": rng.choice(["p", None], n),
        }
    )
    with Batch.from_frame(frame) as batch:
        profiled = profile(batch)
    for name in ("a", "b", "c"):
        column = profiled.column(name)
        expected = frame[name].dropna().astype(str).value_counts()
        assert column is not None
        assert dict(column.top) == expected.to_dict()
        assert column.distinct == len(expected)
        assert column.nulls == int(frame[name].isna().sum())


@pytest.mark.parametrize("scale", [1, 2**20, 2**40])
def test_integer_mean_and_std_are_pandas(scale: int) -> None:
    """Integer columns, small (summed exactly) or large enough that the exact sum would
    not be the double sum (summed as doubles): mean and std are pandas' (the small ones
    exactly the exact sum over the count)."""
    rng = np.random.default_rng(7)
    n = 300_000
    values = rng.integers(-1000, 1000, n) * scale
    frame = pd.DataFrame({"n": values, "m": pd.array(values, dtype="Int64")})
    frame.loc[::7, "m"] = None
    with Batch.from_frame(frame) as batch:
        profiled = profile(batch)
    for name in ("n", "m"):
        column, present = profiled.column(name), frame[name].dropna().astype(np.int64)
        assert column is not None and column.mean is not None and column.std is not None
        if scale == 1:
            assert column.mean == float(sum(int(v) for v in present)) / len(present)
        assert math.isclose(column.mean, float(present.mean()), rel_tol=1e-9, abs_tol=1e-9)
        assert math.isclose(column.std, float(present.std()), rel_tol=1e-9)
        assert (column.min, column.max) == (int(present.min()), int(present.max()))


def test_a_sorted_key_with_a_text_rowid_column_is_checked() -> None:
    """A text column named ``rowid`` does not stop a sorted key from being checked:
    its repeats are pandas' and its examples hold the smallest repeated values."""
    n = 50_000
    keys = pd.Series(np.arange(n), dtype=np.int64)
    keys[[100, 30_000]] = keys[[99, 29_999]].to_numpy()
    frame = pd.DataFrame({"rowid": [f"r{i}" for i in range(n)], "k": keys})
    config = SourceConfig.model_validate(
        {"kind": "csv", "path": "x", "checks": {"columns": {"k": {"unique": True}}}}
    )
    with Batch.from_frame(frame) as batch:
        report = validate(batch, "t", config, profile(batch), Context(now=NOW))
    finding = next(f for f in report.findings if f.check == "k.unique")
    assert finding.violations == int(keys.duplicated().sum()) == 2
    assert [row["k"] for row in finding.examples] == [99, 99, 29_999, 29_999]


PATTERNS = [
    "id_[0-9]{8}",
    r"[A-Z]{2}-\d{4}",
    r"v\.[a-c_]{2}x",
    "ab{0}c",
    "[a-zA-Z0-9]{3}",
    "id_[0-9]{1,8}",  # not fixed-width: counted with the regex itself
]


def _near_misses(rng: np.random.Generator, n: int) -> list[str | None]:
    """Strings that match the patterns above, or miss them by one character, a length,
    a case or a non-ASCII character."""
    alphabet = list("0123456789abcxyzABXZ_-.:é٣\n ")
    made: list[str | None] = []
    for i in range(n):
        kind = i % 6
        if kind == 0:
            made.append(f"id_{i:08d}")
        elif kind == 1:
            made.append(f"AB-{i % 10_000:04d}")
        elif kind == 2:
            made.append("v." + "".join(rng.choice(list("abc_"), 2)) + "x")
        elif kind == 3:
            made.append(None)
        else:
            made.append("".join(rng.choice(alphabet, rng.integers(0, 12))))
    for i in range(0, n, 97):  # one character off
        text = made[i]
        if text:
            at = int(rng.integers(0, len(text)))
            made[i] = text[:at] + str(rng.choice(alphabet)) + text[at + 1 :]
    return made


@pytest.mark.parametrize("pattern", PATTERNS)
def test_regex_checks_count_what_pandas_does_not_fully_match(pattern: str) -> None:
    """A regex check's violations and first failing rows are pandas' (Python's re in
    ASCII mode), whether it is matched as a GLOB pattern or by the regex engine."""
    import re

    values = pd.Series(_near_misses(np.random.default_rng(8), 40_000), dtype=object)
    frame = pd.DataFrame({"s": values})
    config = SourceConfig.model_validate(
        {"kind": "csv", "path": "x", "checks": {"columns": {"s": {"regex": pattern}}}}
    )
    with Batch.from_frame(frame) as batch:
        report = validate(batch, "t", config, profile(batch), Context(now=NOW))
    finding = next(f for f in report.findings if f.check == "s.regex")
    present = values.dropna()
    failing = present[[re.fullmatch(pattern, v, re.ASCII) is None for v in present]]
    assert finding.violations == len(failing) > 0
    assert [row["s"] for row in finding.examples] == list(failing[:20])


@pytest.mark.parametrize("order", ["sorted", "sorted head, shuffled tail"])
def test_unique_and_ordering_counted_in_the_shared_pass_are_pandas(order: str) -> None:
    """A key without nulls counted alongside a regex and an ordering in one pass: its
    repeats, the rows going backwards and the regex misses are pandas'; its examples
    hold the smallest repeated values when it is sorted, and repeated values in order
    when only its head is (then it is grouped)."""
    rng = np.random.default_rng(9)
    n = 300_000
    numbers = np.arange(n)
    copied = rng.choice(np.arange(100, n), size=40, replace=False)
    numbers[copied] = numbers[copied - 1]
    if order != "sorted":
        numbers[200_000:] = rng.permutation(numbers[200_000:])
    keys = pd.Series([f"k{i:07d}" for i in numbers], dtype=object)
    keys[[5, 77]] = keys[[5, 77]] + "a"  # still in order, but not matching
    stamps = pd.Series(pd.date_range("2026-01-01", periods=n, freq="s"))
    stamps[[10, 1000]] = stamps[[9, 999]].to_numpy() - pd.Timedelta(seconds=30)
    frame = pd.DataFrame({"k": keys, "t": stamps})
    checks = {"columns": {"k": {"unique": True, "regex": "k[0-9]{7}"}}, "ordered": {"by": "t"}}
    config = SourceConfig.model_validate({"kind": "csv", "path": "x", "checks": checks})
    with Batch.from_frame(frame) as batch:
        report = validate(batch, "t", config, profile(batch), Context(now=NOW))
    found = {f.check: f for f in report.findings}
    repeated = set(keys[keys.duplicated(keep=False)])
    holding = keys[keys.isin(sorted(repeated)[:20])].sort_values()
    shown = [row["k"] for row in found["k.unique"].examples]
    assert found["k.unique"].violations == int(keys.duplicated().sum()) == 40
    if order == "sorted":
        assert shown == list(holding[:20])
    assert len(shown) == 20 and set(shown) <= repeated and shown == sorted(shown)
    assert found["k.regex"].violations == 2
    assert found["ordered:t"].violations == int((stamps < stamps.shift()).sum()) == 2


def test_columns_named_like_the_counts_query_are_counted_as_pandas_counts() -> None:
    """Few-valued columns named ``n`` and ``count`` (words a counting query might use for
    its own columns) get pandas' count of each value."""
    rng = np.random.default_rng(11)
    frame = pd.DataFrame(
        {
            "n": rng.choice(["a", "b", "c"], 5_000),
            "count": rng.choice(["x", "y"], 5_000),
            "k": rng.integers(0, 4, 5_000),
        }
    )
    with Batch.from_frame(frame) as batch:
        profiled = profile(batch)
    for name in ("n", "count", "k"):
        column = profiled.column(name)
        assert column is not None
        expected = {str(v): int(c) for v, c in frame[name].value_counts().items()}
        assert dict(column.top) == expected, name
