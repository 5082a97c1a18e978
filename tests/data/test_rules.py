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
