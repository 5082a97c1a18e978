"""Profile a batch: counts, nulls, min / max, mean / std, a quantile sketch, top
categories and a distinct-count estimate per column, in a few vectorised DuckDB queries.

1. Text and integer columns are triaged on their leading ``TRIAGE_ROWS`` rows (read by
   row id when no row was deleted): few-valued ones get exact category counts,
   many-valued ones a HyperLogLog estimate, so memory stays bounded however many
   distinct values a column holds. (A column whose head shows at most ``TOP_LIMIT``
   values but whose tail is long still gets an exact distinct count and an empty top
   list.) Floats get no estimate (``-1``).
2. One aggregate pass over every column: counts, min / max and sums (for mean / std)
   of numbers and times, true-counts of booleans, and the HyperLogLog estimates.
   Integers are summed exactly where that sum is the double sum bit for bit.
3. Quantile sketches of numeric columns from a seeded 2% Bernoulli sample (the whole
   batch below ``SAMPLE_FROM`` rows).
4. Exact category counts: a GROUP BY over several few-valued columns at once, its
   combinations summed per column.

Every field is what plain SQL over the whole batch gives (the quantile sketch is exact
over its sample, the HyperLogLog estimate DuckDB's ``approx_count_distinct``).
"""

from __future__ import annotations

import math
from typing import Any

from keel.data.batch import TABLE, Batch, jsonable, kind_of, quote, readable_by_rowid
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
_WHOLE = frozenset(
    ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")
)
"""Integer types whose exact sum DuckDB keeps without overflow (as HUGEINT)."""


def profile(batch: Batch) -> Profile:
    """The profile of every column of ``batch``."""
    schema = batch.schema
    rows = batch.rows
    if not schema:
        return Profile(rows=rows, columns=())
    plans = [_ColumnPlan(name, duck_type, rows) for name, duck_type in schema.items()]
    counted = [p.name for p in plans if p.kind in ("string", "int")]
    estimates = _triage(batch, counted, rows, schema)
    many = [name for name, seen in estimates.items() if seen > TOP_LIMIT]
    selects = [expr for plan in plans for expr in plan.expressions()]
    selects += [f"approx_count_distinct({quote(name)})" for name in many]
    values = list(batch.con.execute(f"SELECT {', '.join(selects)} FROM {TABLE}").fetchone() or ())
    columns = []
    for plan in plans:
        taken, values = values[: plan.width], values[plan.width :]
        columns.append(plan.summary(taken))
    columns = _exact_sums(batch, plans, columns)
    columns = [
        _cardinality(c, values[many.index(c.name)]) if c.name in many else c for c in columns
    ]
    columns = _with_categories(batch, _with_quantiles(batch, columns), estimates)
    return Profile(rows=rows, columns=tuple(columns))


class _ColumnPlan:
    """The aggregate expressions for one column and how to read their results."""

    def __init__(self, name: str, duck_type: str, rows: int) -> None:
        self.name, self.type, self.kind, self.rows = name, duck_type, kind_of(duck_type), rows
        self.whole = duck_type in _WHOLE
        self.unsettled: tuple[int, Any] | None = None  # count and squares, sum still owed

    def expressions(self) -> list[str]:
        col = quote(self.name)
        exprs = [f"count({col})"]
        if self.kind in _NUMERIC or self.kind in _TEMPORAL:
            exprs += [f"min({col})", f"max({col})"]
        if self.kind in _NUMERIC:
            value = col if self.type == "DOUBLE" else f"{col}::DOUBLE"
            exprs += [f"sum({col})" if self.whole else f"sum({value})", f"sum({value} * {value})"]
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
            total = rest[0]
            if self.whole and not _exact_in_doubles(count, fields["min"], fields["max"]):
                self.unsettled, total = (count, rest[1]), None
            if self.unsettled is None:
                fields["mean"], fields["std"] = _moments(count, total, rest[1])
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


def _exact_in_doubles(count: int, low: Any, high: Any) -> bool:
    """Whether summing these integers as doubles, in any order, rounds nowhere: every
    partial sum is then a whole number within 2**53, so the exact integer sum is the
    double sum bit for bit."""
    if not count or low is None or high is None:
        return True
    return max(abs(int(low)), abs(int(high))) * count <= 2**53


def _exact_sums(
    batch: Batch, plans: list[_ColumnPlan], columns: list[ColumnProfile]
) -> list[ColumnProfile]:
    """Mean and std of integer columns too large for their exact sum to equal the double
    sum: summed as doubles, as every other numeric column is."""
    owed = [p for p in plans if p.unsettled is not None]
    if not owed:
        return columns
    selects = ", ".join(f"sum({quote(p.name)}::DOUBLE)" for p in owed)
    found = batch.con.execute(f"SELECT {selects} FROM {TABLE}").fetchone() or ()
    done = {}
    for plan, total in zip(owed, found, strict=True):
        assert plan.unsettled is not None
        count, squares = plan.unsettled
        mean, std = _moments(count, total, squares)
        done[plan.name] = (mean, std)
    return [
        _replace(c, mean=done[c.name][0], std=done[c.name][1]) if c.name in done else c
        for c in columns
    ]


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


def _triage(batch: Batch, names: list[str], rows: int, schema: dict[str, str]) -> dict[str, int]:
    """Each column's distinct-count estimate over the leading ``TRIAGE_ROWS`` rows.

    Rows keep their row ids in arrival order, so the rows with ids below ``TRIAGE_ROWS``
    are the leading rows whenever there are that many of them (none deleted): then DuckDB
    reads only the first row group instead of streaming the table into a LIMIT."""
    if not names:
        return {}
    head = ", ".join(f"approx_count_distinct({quote(name)})" for name in names)
    found: tuple[Any, ...] = (None,)
    if readable_by_rowid(schema):
        by_id = f"SELECT count(*), {head} FROM {TABLE} WHERE rowid < {TRIAGE_ROWS}"
        found = batch.con.execute(by_id).fetchone() or (None,)
    if found[0] != min(rows, TRIAGE_ROWS):
        limited = f"SELECT NULL, {head} FROM (FROM {TABLE} LIMIT {TRIAGE_ROWS})"
        found = batch.con.execute(limited).fetchone() or ()
    return dict(zip(names, (int(n) for n in found[1:]), strict=True))


def _with_categories(
    batch: Batch, columns: list[ColumnProfile], estimates: dict[str, int]
) -> list[ColumnProfile]:
    """Exact counts per value of the columns the leading rows show few-valued.

    Their HyperLogLog estimates, if many-valued, come with the aggregate pass: DuckDB
    runs a mix of exact counting and HyperLogLog much slower, so they stay apart."""
    few = [
        c for c in columns if c.name in estimates and estimates[c.name] <= TOP_LIMIT
        and c.count > c.nulls
    ]  # fmt: skip
    done: dict[str, ColumnProfile] = {}
    for group in _combined(few, estimates):
        done.update({c.name: _cardinality(c, v) for c, v in _category_counts(batch, group)})
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
    per column); its few combinations are then summed per column here."""
    names = [quote(c.name) for c in group]
    texts = ", ".join(f"{name}::VARCHAR" for name in names)
    sql = f"SELECT {texts}, count(*) FROM {TABLE} GROUP BY {', '.join(names)}"
    counts: list[dict[str, int]] = [{} for _ in group]
    for *values, n in batch.con.execute(sql).fetchall():
        for tally, value in zip(counts, values, strict=True):
            if value is not None:
                tally[value] = tally.get(value, 0) + int(n)
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
