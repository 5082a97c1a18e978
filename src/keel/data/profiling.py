"""Profile a batch: counts, nulls, min / max, mean / std, a quantile sketch, top
categories and a distinct-count estimate per column, in a few vectorised DuckDB queries.

1. One aggregate pass over every column: counts, min / max and sums (for mean / std)
   of numbers and times, true-counts of booleans.
2. Quantile sketches of numeric columns from a seeded 2% Bernoulli sample (the whole
   batch below ``SAMPLE_FROM`` rows).
3. Text and integer columns are triaged on their leading ``TRIAGE_ROWS`` rows: few-valued
   ones get exact category counts (``histogram``), many-valued ones a HyperLogLog
   estimate, so memory stays bounded however many distinct values a column holds. (A
   column whose head shows at most ``TOP_LIMIT`` values but whose tail is long still gets
   an exact distinct count and an empty top list.) Floats get no estimate (``-1``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from keel.data.batch import TABLE, Batch, jsonable, kind_of, quote
from keel.data.model import QUANTILES, ColumnProfile, Profile

__all__ = ["SAMPLE_FROM", "TOP_LIMIT", "TRIAGE_ROWS", "profile"]

TOP_LIMIT = 50
"""Columns with at most this many distinct values get exact category counts."""
SAMPLE_FROM = 50_000
"""Batches with more rows take their quantile sketch from a 2% sample."""
TRIAGE_ROWS = 20_000
"""Rows read to tell few-valued columns (exact counts) from many-valued ones (HLL)."""

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
    """Quantile sketches of the numeric columns, from a seeded 2% sample of large batches.

    DuckDB draws the sample (the same rows whatever columns are read) and casts the values
    to DOUBLE; the values are then sorted in NumPy and interpolated exactly as DuckDB's
    ``quantile_cont`` does (``_interpolation``), which costs a fraction of the aggregate.
    If this DuckDB's arithmetic cannot be matched, ``quantile_cont`` itself runs."""
    numeric = [c for c in columns if c.kind in _NUMERIC and c.count > c.nulls]
    if not numeric:
        return columns
    names = ", ".join(f"{quote(c.name)}::DOUBLE AS c{i}" for i, c in enumerate(numeric))
    sample = " USING SAMPLE 2% (bernoulli, 42)" if numeric[0].count > SAMPLE_FROM else ""
    source = f"SELECT {names} FROM {TABLE}{sample}"
    interpolate = _interpolation(batch)
    found: list[Any]
    if interpolate is None:
        probs = ", ".join(str(q) for q in QUANTILES[1:-1])
        selects = ", ".join(f"quantile_cont(c{i}, [{probs}])" for i in range(len(numeric)))
        found = list(batch.con.execute(f"SELECT {selects} FROM ({source})").fetchone() or ())
    else:
        arrays = batch.con.execute(source).fetchnumpy()
        found = [_quantiles(arrays[f"c{i}"], interpolate) for i in range(len(numeric))]
    sketches = {c.name: _pinned(q, c.min, c.max) for c, q in zip(numeric, found, strict=True)}
    return [_replace(c, quantiles=sketches[c.name]) if c.name in sketches else c for c in columns]


Interpolate = Callable[[float, float, float], float]


def _plain(lo: float, hi: float, d: float) -> float:
    return lo * (1.0 - d) + hi * d


def _fused_low(lo: float, hi: float, d: float) -> float:
    """``lo * (1 - d) + hi * d`` with the first product fused into the sum (one rounding)."""
    return _fused(lo, hi, d, lambda: Fraction(lo) * Fraction(1.0 - d) + Fraction(hi * d))


def _fused_high(lo: float, hi: float, d: float) -> float:
    """``lo * (1 - d) + hi * d`` with the second product fused into the sum."""
    return _fused(lo, hi, d, lambda: Fraction(hi) * Fraction(d) + Fraction(lo * (1.0 - d)))


def _fused(lo: float, hi: float, d: float, exact: Callable[[], Fraction]) -> float:
    """The exact value rounded once; infinities and NaN come out as the plain form's."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return _plain(lo, hi, d)
    value = exact()
    try:
        return float(value)
    except OverflowError:
        return math.copysign(math.inf, value)


_PROBES = (
    (-7.235352591083009, 22.23707161141072, 0.29023655437247853),
    (-5.418616698168741, 1.54939319209603, 0.839910165226433),
    (-5.539853165252082, 3.8397716878779145, 0.5967520292923746),
)
"""Interpolations on which the plain and the two fused evaluations all differ."""
_MATCHED: list[Interpolate | None] = []


def _interpolation(batch: Batch) -> Interpolate | None:
    """How this DuckDB build evaluates ``quantile_cont``'s ``lo * (1 - d) + hi * d`` (a
    compiler may fuse a multiply into the add), found once by asking it to interpolate
    the probes; None if no candidate matches every probe."""
    if not _MATCHED:
        asked = ", ".join(
            f"(SELECT quantile_cont(v, CAST('{d!r}' AS DOUBLE)) FROM "
            f"(VALUES (CAST('{lo!r}' AS DOUBLE)), (CAST('{hi!r}' AS DOUBLE))) AS t(v))"
            for lo, hi, d in _PROBES
        )
        said = batch.con.execute(f"SELECT {asked}").fetchone() or ()
        fits = [
            f
            for f in (_plain, _fused_low, _fused_high)
            if all(f(*probe) == value for probe, value in zip(_PROBES, said, strict=True))
        ]
        _MATCHED.append(fits[0] if fits else None)
    return _MATCHED[0]


def _quantiles(values: Any, interpolate: Interpolate) -> list[float] | None:
    """The inner ``QUANTILES`` of the non-null values as DuckDB's ``quantile_cont`` takes
    them: at position (n - 1) * q of the sorted values (NaN last), the value there, or
    the interpolation between its two neighbours; None without values."""
    import numpy as np

    if isinstance(values, np.ma.MaskedArray):
        values = values.compressed()
    if not len(values):
        return None
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    found = []
    for q in QUANTILES[1:-1]:
        position = float(len(ordered) - 1) * q
        low, high = math.floor(position), math.ceil(position)
        lo = float(ordered[low])
        found.append(lo if low == high else interpolate(lo, float(ordered[high]), position - low))
    return found


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
    few = [c for c, n in zip(counted, seen or (), strict=True) if n <= TOP_LIMIT]
    many = [c for c in counted if c not in few]
    done: dict[str, ColumnProfile] = {}
    for group, aggregate in ((few, "histogram({}::VARCHAR)"), (many, "approx_count_distinct({})")):
        if not group:
            continue
        selects = ", ".join(aggregate.format(quote(c.name)) for c in group)
        found = batch.con.execute(f"SELECT {selects} FROM {TABLE}").fetchone() or ()
        done.update({c.name: _cardinality(c, v) for c, v in zip(group, found, strict=True)})
    return [done.get(c.name, c) for c in columns]


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
