"""Business rules (``checks.rules`` in keel.yaml) as DuckDB SQL over a batch.

A rule such as ``end_date >= start_date`` or ``amount >= 0 or kind == 'refund'`` is an
expression of keel.yaml's one expression language (``keel.expressions``, data-rule context):
it is parsed and checked, its names must be columns of the batch, and the checked tree is
compiled to a DuckDB expression so the check stays vectorised. Nothing the user wrote
reaches DuckDB as text, so a rule reads the row it is given and nothing more.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping

import duckdb

from keel.data.batch import quote
from keel.errors import ExpressionError
from keel.expressions import DATA_RULE, SQL_FUNCTIONS, parse

__all__ = ["FUNCTIONS", "RuleError", "columns_of", "to_sql"]

FUNCTIONS = frozenset(SQL_FUNCTIONS)
RuleError = ExpressionError  # the name data checks catch; one error type for every expression


def columns_of(expr: str) -> list[str]:
    """The column names an expression reads, in order of first use."""
    return parse(expr, DATA_RULE).names


def to_sql(expr: str, columns: Iterable[str] | Mapping[str, str]) -> str:
    """The expression as DuckDB SQL over a batch with ``columns``; ``ExpressionError`` if it
    is outside the language or reads a column the batch does not have. Given the columns'
    types (name -> DuckDB type), the SQL is also tried on one row of nulls of those types,
    so a rule DuckDB cannot run on them (text compared with a number, ``lower`` of a number,
    a literal that is not a date) is refused here, not halfway through a check."""
    sql = parse(expr, DATA_RULE, names=columns).to_sql()
    if isinstance(columns, Mapping):
        _try_on(sql, expr, columns)
    return sql


def _try_on(sql: str, expr: str, types: Mapping[str, str]) -> None:
    read = {name: types[name] for name in parse(expr, DATA_RULE).names}
    nulls = ", ".join(f"CAST(NULL AS {kind}) AS {quote(name)}" for name, kind in read.items())
    with _scratch().cursor() as cursor:
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
