"""The cheap ways of counting give the answers of the plain ones, on batches large enough
for DuckDB to split into several row groups and threads.

Uniqueness streams a sorted column, ordering streams arrival order, rules are decided
from min and max, and shared checks keep their first failing row ids. Each test computes
the expected answer with pandas, never with Keel.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from keel.data.batch import Batch
from keel.data.model import Finding, Report
from keel.data.profiling import profile
from keel.data.rules import never_false
from keel.data.validation import EXAMPLES, Context, validate
from keel.schema import SourceConfig

ROWS = 300_000  # three row groups of 122,880 rows
NOW = datetime(2026, 6, 1)


def _validate(frame: pd.DataFrame, checks: dict[str, Any]) -> Report:
    checks = {"extra_columns": "ignore", **checks}
    config = SourceConfig.model_validate({"kind": "csv", "path": "x", "checks": checks})
    with Batch.from_frame(frame) as batch:
        return validate(batch, "t", config, profile(batch), Context(now=NOW))


def _finding(report: Report, check: str) -> Finding:
    return next(f for f in report.findings if f.check == check)


def _ids(n: int, rng: np.random.Generator, repeats: int) -> pd.Series:
    """Sorted ids ``id_00000000``..., with ``repeats`` rows copying the row before."""
    numbers = np.arange(n)
    copied = rng.choice(np.arange(1, n), size=repeats, replace=False)
    numbers[copied] = numbers[copied - 1]
    return pd.Series([f"id_{i:08d}" for i in numbers], dtype=object)


def _expected_unique(ids: pd.Series) -> tuple[int, set[str]]:
    present = ids.dropna()
    return int(present.duplicated().sum()), set(present[present.duplicated(keep=False)])


@pytest.mark.parametrize("order", ["sorted", "shuffled", "sorted head, shuffled tail"])
def test_unique_counts_repeats_however_the_column_arrives(order: str) -> None:
    """A unique column's violations and examples are the same whether it arrives sorted
    (counted by streaming), shuffled (grouped) or sorted only in its leading rows."""
    rng = np.random.default_rng(1)
    ids = _ids(ROWS, rng, repeats=37)
    ids[rng.choice(ROWS, size=50, replace=False)] = None
    if order == "shuffled":
        ids = ids.sample(frac=1.0, random_state=2).reset_index(drop=True)
    elif order == "sorted head, shuffled tail":
        tail = ids[200_000:].sample(frac=1.0, random_state=3)
        ids = pd.concat([ids[:200_000], tail], ignore_index=True)
    violations, repeated = _expected_unique(ids)
    finding = _finding(
        _validate(pd.DataFrame({"id": ids}), {"columns": {"id": {"unique": True}}}), "id.unique"
    )
    shown = [row["id"] for row in finding.examples]
    assert finding.violations == violations >= EXAMPLES
    assert len(shown) == EXAMPLES and set(shown) <= repeated and shown == sorted(shown)


def test_sorted_unique_shows_the_smallest_repeated_values() -> None:
    """With more than 20 repeated values in a sorted column, the examples are the rows
    holding the smallest of them (every copy, in order)."""
    rng = np.random.default_rng(4)
    ids = _ids(ROWS, rng, repeats=500)
    _, repeated = _expected_unique(ids)
    holding = ids[ids.isin(repeated)].sort_values()
    finding = _finding(
        _validate(pd.DataFrame({"id": ids}), {"columns": {"id": {"unique": True}}}), "id.unique"
    )
    assert [row["id"] for row in finding.examples] == list(holding[:EXAMPLES])


def test_sorted_integer_unique_without_repeats_passes() -> None:
    """A sorted integer key with no repeats passes; one repeat at the very end fails with
    one violation."""
    values = pd.Series(np.arange(ROWS, dtype=np.int64))
    clean = _validate(pd.DataFrame({"k": values}), {"columns": {"k": {"unique": True}}})
    values[ROWS - 1] = values[ROWS - 2]
    dirty = _validate(pd.DataFrame({"k": values}), {"columns": {"k": {"unique": True}}})
    assert _finding(clean, "k.unique").status == "pass"
    assert _finding(dirty, "k.unique").violations == 1


def test_ordering_is_judged_in_arrival_order() -> None:
    """Rows whose time is before the previous row's are counted in arrival order across
    row groups; the examples are the first of them, with the previous value."""
    rng = np.random.default_rng(5)
    times = pd.Series(pd.date_range("2026-01-01", periods=ROWS, freq="s"))
    back = np.sort(rng.choice(np.arange(1, ROWS), size=60, replace=False))
    times[back] = times[back] - pd.Timedelta(hours=1)
    times[rng.choice(ROWS, size=30, replace=False)] = pd.NaT
    previous = times.shift()
    backwards = times < previous
    finding = _finding(_validate(pd.DataFrame({"t": times}), {"ordered": {"by": "t"}}), "ordered:t")
    expected = times[backwards][:EXAMPLES]
    assert finding.violations == int(backwards.sum())
    assert [pd.Timestamp(row["t"]) for row in finding.examples] == list(expected)
    assert [pd.Timestamp(row["previous_t"]) for row in finding.examples] == list(
        previous[backwards][:EXAMPLES]
    )


@pytest.mark.parametrize(
    ("spec", "check"),
    [({"range": [0, 99]}, "n.range"), ({"regex": "[0-9]+"}, "s.regex")],
)
def test_shared_check_examples_are_the_first_failing_rows(spec: dict[str, Any], check: str) -> None:
    """A counted check's examples are its first failing rows in arrival order, with every
    column, even when they sit in different row groups: found again by a LIMIT query (a
    range) or kept by the counting pass (a regex)."""
    rng = np.random.default_rng(6)
    frame = pd.DataFrame({"n": rng.integers(0, 100, ROWS), "w": rng.random(ROWS)})
    bad = np.sort(rng.choice(ROWS, size=25, replace=False))
    frame.loc[bad, "n"] = -1
    frame["s"] = frame["n"].astype(str)
    column = check.split(".")[0]
    finding = _finding(_validate(frame, {"columns": {column: spec}}), check)
    expected = frame.iloc[bad[:EXAMPLES]]
    assert finding.violations == 25
    assert [(row["n"], row["w"], row["s"]) for row in finding.examples] == list(
        zip(expected["n"], expected["w"], expected["s"], strict=True)
    )


def test_several_failing_checks_each_show_their_first_rows() -> None:
    """When several checks fail, each shows its own first failing rows in arrival order
    (a null check, a range and an allowed-values check, failing in different rows)."""
    rng = np.random.default_rng(9)
    frame = pd.DataFrame(
        {
            "n": rng.integers(0, 100, ROWS),
            "w": rng.random(ROWS),
            "c": rng.choice(["a", "b"], ROWS),
        }
    )
    frame.loc[rng.choice(ROWS, size=30, replace=False), "n"] = 500
    frame.loc[rng.choice(ROWS, size=40, replace=False), "w"] = None
    frame.loc[rng.choice(ROWS, size=12, replace=False), "c"] = "z"
    checks = {
        "columns": {
            "n": {"range": [0, 99]},
            "w": {"not_null": True},
            "c": {"allowed": ["a", "b"]},
        }
    }
    report = _validate(frame, checks)
    failing = {"n.range": frame.n > 99, "w.not_null": frame.w.isna(), "c.allowed": frame.c == "z"}
    for check, mask in failing.items():
        finding = _finding(report, check)
        expected = frame[mask].head(EXAMPLES)
        assert finding.violations == int(mask.sum())
        assert [(row["n"], row["c"]) for row in finding.examples] == list(
            zip(expected["n"], expected["c"], strict=True)
        )


def test_a_column_named_rowid_keeps_its_examples() -> None:
    """A batch with its own ``rowid`` column still gets the right failing rows."""
    frame = pd.DataFrame({"rowid": [7, 8, 9], "n": [1, -1, 2]})
    finding = _finding(_validate(frame, {"columns": {"n": {"range": [0, 9]}}}), "n.range")
    assert finding.examples == ({"rowid": 8, "n": -1},)


RULES = [
    "a + b >= 0",
    "a - b < 30",
    "a >= 0 and b <= 10",
    "not (a < 0)",
    "a < 5 or s == 'x'",
    "x + y > -1.5",
    "x >= 0.25",
    "-a <= 0",
    "a > 2 or a < 8",
    "a == 3",
    "a != 3",
    "t1 >= t0",
    "s is null or a >= 0",
]


@pytest.mark.parametrize("rule", RULES)
def test_rules_decided_from_bounds_count_like_pandas(rule: str) -> None:
    """Every rule, decided from min and max or counted, fails on exactly the rows where
    pandas finds it false (null counts as true)."""
    rng = np.random.default_rng(7)
    n = 2_000
    frame = pd.DataFrame(
        {
            "a": rng.integers(0, 10, n),
            "b": rng.integers(0, 10, n),
            "x": rng.random(n),
            "y": rng.random(n),
            "s": rng.choice(["x", "y"], n),
            "t0": pd.date_range("2026-01-01", periods=n, freq="min"),
        }
    )
    frame["t1"] = frame["t0"] + pd.Timedelta(minutes=1)
    frame.loc[frame.index[:7], "x"] = None
    false = {
        "a + b >= 0": ~(frame.a + frame.b >= 0),
        "a - b < 30": ~(frame.a - frame.b < 30),
        "a >= 0 and b <= 10": ~((frame.a >= 0) & (frame.b <= 10)),
        "not (a < 0)": frame.a < 0,
        "a < 5 or s == 'x'": ~((frame.a < 5) | (frame.s == "x")),
        "x + y > -1.5": (frame.x + frame.y <= -1.5),
        "x >= 0.25": frame.x < 0.25,
        "-a <= 0": -frame.a > 0,
        "a > 2 or a < 8": ~((frame.a > 2) | (frame.a < 8)),
        "a == 3": frame.a != 3,
        "a != 3": frame.a == 3,
        "t1 >= t0": frame.t1 < frame.t0,
        "s is null or a >= 0": ~(frame.s.isna() | (frame.a >= 0)),
    }[rule]
    report = _validate(frame, {"rules": [{"name": "r", "expr": rule}]})
    assert _finding(report, "rule:r").violations == int(false.sum())


@pytest.mark.parametrize(
    ("rule", "decided"),
    [
        ("a + b >= 0", True),
        ("a < 100 or s == 'x'", True),
        ("a < 5 or s == 'x'", False),  # a reaches 9: only the rows can tell
        ("t1 >= t0", False),
        ("big + big > 0", False),  # the sum could overflow BIGINT, which DuckDB raises on
        ("a * b >= 0", False),  # multiplication is not read
        ("x >= 0.30000000000000004", False),  # 17 digits: DuckDB might round it otherwise
        ("abs(a) >= 0", False),  # functions are not read
        ("a in (1, 2) or a >= 0", False),
        ("f == true or a >= 0", False),
    ],
)
def test_only_rules_the_bounds_settle_are_decided(rule: str, decided: bool) -> None:
    """A rule is decided without the rows only when comparisons, + and - over its
    columns' bounds leave no row where it is false and nothing could raise."""
    bounds = {
        "a": ("BIGINT", 0, 9),
        "b": ("BIGINT", 0, 9),
        "big": ("BIGINT", 0, 2**62),
        "x": ("DOUBLE", 0.5, 1.0),
        "s": ("VARCHAR", None, None),
        "t0": ("TIMESTAMP", "2026-01-01", "2026-02-01"),
        "t1": ("TIMESTAMP", "2026-01-01", "2026-02-01"),
        "f": ("BOOLEAN", None, None),
    }
    assert never_false(rule, bounds) is decided


def test_category_counts_of_columns_counted_together_match_pandas() -> None:
    """Few-valued text and integer columns, counted in one GROUP BY, each get pandas'
    value counts (nulls left out; integers as text), and a column that is few-valued only
    in its leading rows gets its exact distinct count and no top list."""
    rng = np.random.default_rng(10)
    n = 60_000
    frame = pd.DataFrame(
        {
            "a": rng.choice(["x", "y", None], n),
            "b": rng.integers(0, 7, n),
            "c": rng.choice(list("abcdefghij"), n),
            "tail": [f"v{i % 3}" if i < 30_000 else f"w{i}" for i in range(n)],
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
    tail = profiled.column("tail")
    assert tail is not None and tail.top == () and tail.distinct == frame["tail"].nunique()
