"""Business rules (``checks.rules`` in keel.yaml) as DuckDB SQL over a batch.

A rule such as ``end_date >= start_date`` or ``amount >= 0 or kind == 'refund'`` is an
expression of keel.yaml's one expression language (``keel.expressions``, data-rule context):
it is parsed and checked, its names must be columns of the batch, and the checked tree is
compiled to a DuckDB expression so the check stays vectorised. Nothing the user wrote
reaches DuckDB as text, so a rule reads the row it is given and nothing more.
"""

from __future__ import annotations

import ast
import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import duckdb

from keel.data.batch import quote
from keel.errors import ExpressionError
from keel.expressions import DATA_RULE, SQL_FUNCTIONS, parse

__all__ = ["FUNCTIONS", "RuleError", "columns_of", "never_false", "to_sql"]

FUNCTIONS = frozenset(SQL_FUNCTIONS)
RuleError = ExpressionError  # the name data checks catch; one error type for every expression


def columns_of(expr: str) -> list[str]:
    """The column names an expression reads, in order of first use."""
    return parse(expr, DATA_RULE).names


def to_sql(
    expr: str,
    columns: Iterable[str] | Mapping[str, str],
    con: duckdb.DuckDBPyConnection | None = None,
) -> str:
    """The expression as DuckDB SQL over a batch with ``columns``; ``ExpressionError`` if it
    is outside the language or reads a column the batch does not have. Given the columns'
    types (name -> DuckDB type), the SQL is also tried on one row of nulls of those types,
    so a rule DuckDB cannot run on them (text compared with a number, ``lower`` of a number,
    a literal that is not a date) is refused here, not halfway through a check. The try
    runs in a cursor of ``con`` (the batch's own database: its temporary table of nulls
    stays in that cursor) or, without one, of an empty database made once."""
    sql = parse(expr, DATA_RULE, names=columns).to_sql()
    if isinstance(columns, Mapping):
        _try_on(sql, expr, columns, con or _scratch())
    return sql


def _try_on(sql: str, expr: str, types: Mapping[str, str], con: duckdb.DuckDBPyConnection) -> None:
    read = {name: types[name] for name in parse(expr, DATA_RULE).names}
    nulls = ", ".join(f"CAST(NULL AS {kind}) AS {quote(name)}" for name, kind in read.items())
    with con.cursor() as cursor:
        try:  # a table, not constants, or DuckDB folds the nulls away before it binds the rest
            cursor.execute(f"CREATE TEMP TABLE batch AS SELECT {nulls or '1 AS _'}")
        except duckdb.Error:
            return  # a type DuckDB cannot name back; the check itself will say what is wrong
        try:
            cursor.execute(f"SELECT count(*) FILTER (WHERE ({sql})) FROM batch").fetchall()
        except duckdb.Error as error:
            detail = str(error).splitlines()[0].split(": ", 1)[-1].rstrip(".")
            column_types = ", ".join(f"{name} {kind}" for name, kind in read.items())
            reason = f"DuckDB cannot run it on {column_types or 'these columns'} ({detail})"
            raise ExpressionError(expr, 0, reason, DATA_RULE.kind) from None


@functools.cache
def _scratch() -> duckdb.DuckDBPyConnection:
    """An empty in-memory database to try rules on (opening one costs ~70 ms; a cursor
    on it well under 1 ms). It holds no data and is made on first use."""
    return duckdb.connect()


# -- deciding a rule from column bounds ------------------------------------------------

_INT_BITS = {"TINYINT": 8, "SMALLINT": 16, "INTEGER": 32, "BIGINT": 64}
_EXACT_IN_DOUBLE = 2**53
_DIGITS = 15  # a float literal with at most this many digits reaches DuckDB unrounded


class _Unsure(Exception):
    """The rule holds something the bounds cannot decide, or that might raise in DuckDB."""


@dataclass(frozen=True)
class _Span:
    """Every non-null value of a numeric sub-expression lies in [low, high]; ``bits`` is
    its integer width (None: a DOUBLE)."""

    low: int | float
    high: int | float
    bits: int | None


@dataclass(frozen=True)
class _Opaque:
    """A value that cannot raise but whose range is unknown, and what it compares with."""

    family: str


def never_false(expr: str, bounds: Mapping[str, tuple[str, Any, Any]]) -> bool:
    """Whether a rule is false on no row, judged from its columns' bounds alone
    (``bounds``: column -> (DuckDB type, min, max) over the batch).

    Exact where it answers True: only comparisons, ``+``, ``-``, ``and``, ``or``, ``not``
    and ``is null`` over columns and literals are read (none of which can raise in DuckDB
    once the sums are known not to overflow); a rule with anything else, or with a column
    whose bounds are unknown, is left to be counted over the rows."""
    parsed = parse(expr, DATA_RULE)
    try:
        _, may_be_false = _Bounds(parsed.quoted, bounds).condition(parsed.tree)
    except _Unsure:
        return False
    return not may_be_false


class _Bounds:
    def __init__(self, quoted: Mapping[str, str], bounds: Mapping[str, tuple[str, Any, Any]]):
        self.quoted, self.bounds = quoted, bounds

    def condition(self, node: ast.expr) -> tuple[bool, bool]:
        """(may be true, may be false) over the rows; null is neither."""
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            return node.value, not node.value
        if isinstance(node, ast.BoolOp):
            parts = [self.condition(value) for value in node.values]
            if isinstance(node.op, ast.And):
                return all(t for t, _ in parts), any(f for _, f in parts)
            return any(t for t, _ in parts), all(f for _, f in parts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            may_true, may_false = self.condition(node.operand)
            return may_false, may_true
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.Name) and self._column(node)[0] == "BOOLEAN":
            return True, True
        raise _Unsure

    def _compare(self, node: ast.Compare) -> tuple[bool, bool]:
        results, left = [], node.left
        for op, right in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.Is | ast.IsNot):
                self.value(left)
                results.append((True, True))
            elif type(op) in _ORDER:
                results.append(_order(type(op), self.value(left), self.value(right)))
            else:
                raise _Unsure
            left = right
        return all(t for t, _ in results), any(f for _, f in results)

    def value(self, node: ast.expr) -> _Span | _Opaque:
        if isinstance(node, ast.Constant):
            return _constant(node.value)
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            inner = _numeric(self.value(node.operand))
            if isinstance(node.op, ast.UAdd):
                return inner
            return _fitted(_Span(-inner.high, -inner.low, inner.bits))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub):
            a, b = _numeric(self.value(node.left)), _numeric(self.value(node.right))
            if (a.bits is None) != (b.bits is None):
                a, b = _as_double(a), _as_double(b)
            if isinstance(node.op, ast.Add):
                low, high = a.low + b.low, a.high + b.high
            else:
                low, high = a.low - b.high, a.high - b.low
            bits = None if a.bits is None or b.bits is None else max(a.bits, b.bits)
            return _fitted(_Span(low, high, bits))
        raise _Unsure

    def _column(self, node: ast.Name) -> tuple[str, Any, Any]:
        found = self.bounds.get(self.quoted.get(node.id, node.id))
        if found is None:
            raise _Unsure
        return found

    def _name(self, node: ast.Name) -> _Span | _Opaque:
        duck_type, low, high = self._column(node)
        if duck_type == "VARCHAR" or duck_type == "DATE" or duck_type.startswith("TIMESTAMP"):
            return _Opaque("text" if duck_type == "VARCHAR" else duck_type)
        bits = _INT_BITS.get(duck_type)
        if bits is not None and isinstance(low, int) and isinstance(high, int):
            return _Span(low, high, bits)
        if duck_type == "DOUBLE" and _finite(low) and _finite(high):
            return _Span(float(low), float(high), None)
        raise _Unsure


_ORDER = (ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq)


def _order(op: type[ast.cmpop], a: _Span | _Opaque, b: _Span | _Opaque) -> tuple[bool, bool]:
    if isinstance(a, _Opaque) or isinstance(b, _Opaque):
        if not (isinstance(a, _Opaque) and isinstance(b, _Opaque) and a.family == b.family):
            raise _Unsure
        return True, True
    if (a.bits is None) != (b.bits is None):
        a, b = _as_double(a), _as_double(b)
    if op is ast.Gt or op is ast.GtE:
        a, b, op = b, a, ast.Lt if op is ast.Gt else ast.LtE
    if op is ast.Lt:
        return a.low < b.high, a.high >= b.low
    if op is ast.LtE:
        return a.low <= b.high, a.high > b.low
    overlap = a.low <= b.high and b.low <= a.high
    single = a.low == a.high == b.low == b.high
    return (overlap, not single) if op is ast.Eq else (not single, overlap)


def _constant(value: object) -> _Span | _Opaque:
    if isinstance(value, str):
        return _Opaque("text")
    if isinstance(value, bool) or value is None:
        raise _Unsure
    if isinstance(value, int):
        bits = next((b for b in (8, 16, 32, 64) if -(2 ** (b - 1)) <= value < 2 ** (b - 1)), None)
        if bits is None:
            raise _Unsure
        return _Span(value, value, bits)
    if isinstance(value, float) and _finite(value) and _short(value):
        return _Span(value, value, None)
    raise _Unsure


def _short(value: float) -> bool:
    """Whether DuckDB reads the literal ``repr(value)`` as exactly this double (its
    decimal literals of at most 15 digits convert without double rounding)."""
    digits = repr(value).lower().split("e")[0].replace("-", "").replace(".", "").lstrip("0")
    return len(digits) <= _DIGITS


def _numeric(value: _Span | _Opaque) -> _Span:
    if isinstance(value, _Opaque):
        raise _Unsure
    return value


def _as_double(span: _Span) -> _Span:
    """An integer span as DuckDB widens it to DOUBLE (exact below 2**53)."""
    if span.bits is None:
        return span
    if max(abs(span.low), abs(span.high)) > _EXACT_IN_DOUBLE:
        raise _Unsure
    return _Span(float(span.low), float(span.high), None)


def _fitted(span: _Span) -> _Span:
    """The span, if no value in it overflows its type (DuckDB raises on overflow)."""
    if span.bits is None:
        if not (_finite(span.low) and _finite(span.high)):
            raise _Unsure
        return span
    limit = 2 ** (span.bits - 1)
    if not (-limit <= span.low and span.high < limit):
        raise _Unsure
    return span


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
