"""Profile a batch: counts, nulls, min / max, mean / std, a quantile sketch, top
categories and a distinct-count estimate per column, in a few vectorised DuckDB queries.

1. One aggregate pass over every column: counts, min / max and sums (for mean / std)
   of numbers and times, true-counts of booleans.
2. Quantile sketches of numeric columns from a seeded 2% Bernoulli sample (the whole
   batch below ``SAMPLE_FROM`` rows).
3. Text and integer columns are triaged on their leading ``TRIAGE_ROWS`` rows: few-valued
   ones get exact category counts (a GROUP BY over several such columns at once, summed
   per column), many-valued ones a HyperLogLog
   estimate, so memory stays bounded however many distinct values a column holds. (A
   column whose head shows at most ``TOP_LIMIT`` values but whose tail is long still gets
   an exact distinct count and an empty top list.) Floats get no estimate (``-1``).
"""

from __future__ import annotations

import math
from typing import Any

from keel.data.batch import TABLE, Batch, jsonable, kind_of, quote
from keel.data.model import QUANTILES, ColumnProfile, Profile

__all__ = ["COMBINATIONS", "SAMPLE_FROM", "TOP_LIMIT", "TRIAGE_ROWS", "profile"]

TOP_LIMIT = 50
"""Columns with at most this many distinct values get exact category counts."""
SAMPLE_FROM = 50_000
"""Batches with more rows take their quantile sketch from a 2% sample."""
TRIAGE_ROWS = 20_000
"""Rows read to tell few-valued columns (exact counts) from many-valued ones (HLL)."""
COMBINATIONS = 4_096
"""Few-valued columns are counted together while their heads' value combinations stay
under this many (one GROUP BY over several columns instead of one hash per column)."""

_NUMERIC = ("int", "float")
_TEMPORAL = ("date", "timestamp")
_COUNTED = ("string", "int", "bool")


def profile(batch: Batch) -> Profile:
    """The profile of every column of ``batch``."""
    schema = batch.schema
    rows = batch.rows
    if not schema:
        return Profile(rows=rows, columns=())
    plans = [_ColumnPlan(name, duck_type, rows) for name, duck_type in schema.items()]
    selects = [expr for plan in plans for expr in plan.expressions()]
    values = list(batch.con.execute(f"SELECT {', '.join(selects)} FROM {TABLE}").fetchone() or ())
    columns = []
    for plan in plans:
        taken, values = values[: plan.width], values[plan.width :]
        columns.append(plan.summary(taken))
    columns = _with_cardinality(batch, _with_quantiles(batch, columns))
    return Profile(rows=rows, columns=tuple(columns))


class _ColumnPlan:
    """The aggregate expressions for one column and how to read their results."""

    def __init__(self, name: str, duck_type: str, rows: int) -> None:
        self.name, self.type, self.kind, self.rows = name, duck_type, kind_of(duck_type), rows

    def expressions(self) -> list[str]:
        col = quote(self.name)
        exprs = [f"count({col})"]
        if self.kind in _NUMERIC or self.kind in _TEMPORAL:
            exprs += [f"min({col})", f"max({col})"]
        if self.kind in _NUMERIC:
            exprs += [f"sum({col}::DOUBLE)", f"sum({col}::DOUBLE * {col}::DOUBLE)"]
        if self.kind == "bool":
            exprs.append(f"sum({col}::INTEGER)")
        return exprs

    @property
    def width(self) -> int:
        return len(self.expressions())

    def summary(self, values: list[Any]) -> ColumnProfile:
        count, rest = int(values[0]), values[1:]
        fields: dict[str, Any] = {"distinct": -1}
        if self.kind in _NUMERIC or self.kind in _TEMPORAL:
            fields["min"], fields["max"], rest = _scalar(rest[0]), _scalar(rest[1]), rest[2:]
        if self.kind in _NUMERIC:
            fields["mean"], fields["std"] = _moments(count, rest[0], rest[1])
        if self.kind == "bool":
            trues = int(rest[0] or 0)
            fields["mean"] = trues / count if count else None
            counted = (("true", trues), ("false", count - trues))
            fields["top"] = tuple(sorted((p for p in counted if p[1]), key=lambda p: -p[1]))
            fields["distinct"] = len(fields["top"])
        return ColumnProfile(
            name=self.name, type=self.type, kind=self.kind, count=self.rows,
            nulls=self.rows - count, **fields,
        )  # fmt: skip


def _moments(count: int, total: Any, squares: Any) -> tuple[float | None, float | None]:
    if not count or total is None or not math.isfinite(float(total) + float(squares)):
        return None, None
    mean = float(total) / count
    if count < 2:
        return mean, None
    variance = max(0.0, (float(squares) - count * mean * mean) / (count - 1))
    return mean, math.sqrt(variance)


def _with_quantiles(batch: Batch, columns: list[ColumnProfile]) -> list[ColumnProfile]:
    """Quantile sketches of the numeric columns, from a seeded 2% sample of large batches."""
    numeric = [c for c in columns if c.kind in _NUMERIC and c.count > c.nulls]
    if not numeric:
        return columns
    probs = ", ".join(str(q) for q in QUANTILES[1:-1])
    names = ", ".join(quote(c.name) for c in numeric)
    source = TABLE
    if numeric[0].count > SAMPLE_FROM:
        source = f"(SELECT {names} FROM {TABLE} USING SAMPLE 2% (bernoulli, 42))"
    selects = ", ".join(f"quantile_cont({quote(c.name)}::DOUBLE, [{probs}])" for c in numeric)
    found = batch.con.execute(f"SELECT {selects} FROM {source}").fetchone() or ()
    sketches = {c.name: _pinned(q, c.min, c.max) for c, q in zip(numeric, found, strict=True)}
    return [_replace(c, quantiles=sketches[c.name]) if c.name in sketches else c for c in columns]


def _with_cardinality(batch: Batch, columns: list[ColumnProfile]) -> list[ColumnProfile]:
    """Exact top categories for few-valued columns, HyperLogLog for many-valued ones.

    The leading ``TRIAGE_ROWS`` rows decide which is which; the two kinds are counted in
    separate queries because DuckDB runs a mix of the two aggregates much slower.
    """
    counted = [c for c in columns if c.kind in ("string", "int") and c.count > c.nulls]
    if not counted:
        return columns
    head = ", ".join(f"approx_count_distinct({quote(c.name)})" for c in counted)
    seen = batch.con.execute(f"SELECT {head} FROM (FROM {TABLE} LIMIT {TRIAGE_ROWS})").fetchone()
    estimates = dict(zip((c.name for c in counted), seen or (), strict=True))
    few = [c for c in counted if estimates[c.name] <= TOP_LIMIT]
    many = [c for c in counted if c not in few]
    done: dict[str, ColumnProfile] = {}
    for group in _combined(few, estimates):
        done.update({c.name: _cardinality(c, v) for c, v in _category_counts(batch, group)})
    if many:
        selects = ", ".join(f"approx_count_distinct({quote(c.name)})" for c in many)
        found = batch.con.execute(f"SELECT {selects} FROM {TABLE}").fetchone() or ()
        done.update({c.name: _cardinality(c, v) for c, v in zip(many, found, strict=True)})
    return [done.get(c.name, c) for c in columns]


def _combined(few: list[ColumnProfile], estimates: dict[str, int]) -> list[list[ColumnProfile]]:
    """Few-valued columns grouped so each group's combinations of values stay under
    ``COMBINATIONS`` by the head's estimates."""
    groups: list[list[ColumnProfile]] = []
    product = COMBINATIONS + 1
    for column in few:
        size = max(int(estimates[column.name]), 1)
        if product * size > COMBINATIONS:
            groups.append([])
            product = 1
        groups[-1].append(column)
        product *= size
    return groups


def _category_counts(
    batch: Batch, group: list[ColumnProfile]
) -> list[tuple[ColumnProfile, dict[str, int]]]:
    """Each column's count per value (text, as ``histogram(col::VARCHAR)`` has it), from
    one GROUP BY over the group's columns together (one hash of the row's values, not one
    per column) whose combinations are then summed per column inside DuckDB."""
    names = [quote(c.name) for c in group]
    combos = f"SELECT {', '.join(names)}, count(*) AS n FROM {TABLE} GROUP BY ALL"
    per_column = " UNION ALL ".join(
        f"SELECT {i} AS k, {name}::VARCHAR AS v, sum(n)::BIGINT AS n FROM combos "
        f"WHERE {name} IS NOT NULL GROUP BY {name}"
        for i, name in enumerate(names)
    )
    sql = f"WITH combos AS MATERIALIZED ({combos}) {per_column}"
    counts: list[dict[str, int]] = [{} for _ in group]
    for k, value, n in batch.con.execute(sql).fetchall():
        counts[k][value] = int(n)
    return list(zip(group, counts, strict=True))


def _cardinality(column: ColumnProfile, value: Any) -> ColumnProfile:
    filled = column.count - column.nulls
    if not isinstance(value, dict):
        return _replace(column, distinct=min(int(value), filled))
    pairs = sorted(value.items(), key=lambda kv: (-kv[1], kv[0]))
    top = tuple((str(v), int(n)) for v, n in pairs) if len(pairs) <= TOP_LIMIT else ()
    return _replace(column, distinct=len(pairs), top=top)


def _replace(column: ColumnProfile, **changes: Any) -> ColumnProfile:
    return ColumnProfile(**{**column.__dict__, **changes})


def _pinned(sketch: Any, low: Any, high: Any) -> tuple[float, ...]:
    """The sampled inner quantiles with the exact min and max at the ends."""
    inner = [float(q) for q in sketch or ()]
    if not all(math.isfinite(q) for q in inner):
        return ()  # infinities make a sketch meaningless
    if not isinstance(low, int | float) or not isinstance(high, int | float):
        return tuple(inner)
    return (float(low), *inner, float(high))


def _scalar(value: Any) -> Any:
    value = jsonable(value)
    return value if isinstance(value, int | float | str | bool) or value is None else str(value)
