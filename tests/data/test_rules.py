"""Rule expressions: a whitelist grammar, never arbitrary SQL or Python."""

from __future__ import annotations

import pytest

from keel.data.rules import RuleError, columns_of, to_sql

COLUMNS = ["amount", "kind", "start", "end"]


@pytest.mark.parametrize(
    ("expr", "sql"),
    [
        ("amount >= 0 or kind == 'refund'", '(("amount" >= 0) OR ("kind" = \'refund\'))'),
        ("end >= start", '("end" >= "start")'),
        ("abs(amount) < 10", '(abs("amount") < 10)'),
    ],
)
def test_allowed_expressions_become_sql(expr: str, sql: str) -> None:
    """Column names are quoted; operators, literals and allowed functions pass through."""
    assert to_sql(expr, COLUMNS) == sql


@pytest.mark.parametrize(
    "expr",
    [
        "(select 1) > 0",
        "read_csv('/etc/passwd') is null",
        "amount > 0; drop table batch",
        "getenv('HOME') = ''",
        "unknown > 1",
        "",
    ],
)
def test_anything_else_is_refused(expr: str) -> None:
    """Subqueries, table functions, statements and unknown names are refused."""
    with pytest.raises(RuleError):
        to_sql(expr, COLUMNS)


def test_columns_of_lists_names_in_order() -> None:
    """The columns an expression reads, each once."""
    assert columns_of("end >= start and start > 0") == ["end", "start"]


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ("amount > 'abc'", "Could not convert string 'abc'"),
        ("kind > 5", "Cannot compare values of type VARCHAR"),
        ("lower(amount) == 'a'", "lower(BIGINT)"),
        ("regexp_matches(kind, '(')", "missing )"),
    ],
)
def test_a_rule_duckdb_cannot_run_on_the_column_types_is_refused(expr: str, words: str) -> None:
    """Given the batch's column types, a rule that would fail inside DuckDB halfway through
    the checks is refused first, naming the types and DuckDB's reason."""
    types = {"amount": "BIGINT", "kind": "VARCHAR", "start": "DATE", "end": "DATE"}
    with pytest.raises(RuleError, match="DuckDB cannot run it on") as caught:
        to_sql(expr, types)
    assert words in str(caught.value)


def test_a_rule_that_fits_the_column_types_is_kept() -> None:
    """The trial run refuses nothing DuckDB can run."""
    types = {"amount": "BIGINT", "kind": "VARCHAR", "start": "DATE", "end": "DATE"}
    assert to_sql("end >= start and year(start) > 2020", types) == (
        '(("end" >= "start") AND (year("start") > 2020))'
    )
