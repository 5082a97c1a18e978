"""keel.yaml's one expression language: the grammar, its errors, its refusals, and the
two back-ends (Python and DuckDB SQL) agreeing on the same tree."""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.errors import ConfigError, ExpressionError
from keel.expressions import (
    ACTION_CONDITION,
    ALERT_CONDITION,
    CONTEXTS,
    DATA_RULE,
    GATE_THRESHOLD,
    SERVING_RULE,
    Context,
    parse,
    parse_threshold,
)
from tests.helpers import keel

ROW = {"amount": -5, "kind": "refund", "tenure": 2, "plan": "basic", "probability": 0.8}


@pytest.mark.parametrize(
    ("text", "context", "expected"),
    [
        ("amount >= 0 or kind == 'refund'", DATA_RULE, True),
        ("amount >= 0 OR kind = 'refund'", DATA_RULE, True),  # the SQL spellings
        ("amount <> -5", DATA_RULE, False),
        ('"amount" < 0 AND NOT "kind" IS NULL', DATA_RULE, True),  # SQL's quoted names
        ("`amount` < 0", ALERT_CONDITION, True),  # quoted names everywhere else
        ("abs(amount) < 10 and coalesce(missing, 1) == 1", DATA_RULE, True),
        ("plan in ('basic', 'standard') and tenure < 3", ACTION_CONDITION, True),
        ("0.9 if probability > 0.5 else 0.1", SERVING_RULE, 0.9),
        ("max(tenure, 4) - abs(amount) // 2", SERVING_RULE, 2),
        ("missing > 0", ALERT_CONDITION, None),  # a missing name is unknown
        ("missing > 0 or tenure == 2", ALERT_CONDITION, True),
        ("missing is null and kind is not null", DATA_RULE, True),
        ("kind == 'it''s'", DATA_RULE, False),
        ("amount / 0 > 1", DATA_RULE, None),
    ],
)
def test_valid_expressions_evaluate_in_every_context(
    text: str, context: Context, expected: object
) -> None:
    """The grammar is the same in every context; nulls follow SQL's three-valued logic."""
    assert parse(text, context).evaluate(ROW) == expected


@pytest.mark.parametrize(
    ("text", "context", "column", "words"),
    [
        ("distinct(age)", DATA_RULE, 1, "'distinct' is not a function data rules may call"),
        ("min(a, b) > 0", DATA_RULE, 1, "'min' is not a function data rules may call"),
        ("least(a) > 0", ALERT_CONDITION, 1, "'least' is not a function alert conditions may call"),
        ("amount > 0; drop table batch", DATA_RULE, 11, "';' cannot stand here"),
        ("x between 1 and 5", DATA_RULE, 3, "write low <= x <= high"),
        ("probability >=", ACTION_CONDITION, 15, "it ends too early"),
        ("abs(a, b) > 1", SERVING_RULE, 1, "abs takes 1 argument, not 2"),
        ("round(*x)", SERVING_RULE, 1, "without names or *"),
        ("x is 1", ALERT_CONDITION, 6, "'is' compares only with null"),
        ("x in y", ALERT_CONDITION, 6, "'in' takes a list of values"),
        ("", DATA_RULE, 1, "it is empty"),
        ("amount + 1", DATA_RULE, 1, "it is a value, not a condition"),
        ("'yes'", ALERT_CONDITION, 1, "it is a value, not a condition"),
        ("value > 1 and other > 2", GATE_THRESHOLD, 15, "'other' is not a name"),
    ],
)
def test_invalid_expressions_name_the_column_and_say_why(
    text: str, context: Context, column: int, words: str
) -> None:
    """Each refusal is one sentence naming the context, the text and the column."""
    with pytest.raises(ExpressionError) as caught:
        parse(text, context)
    error = caught.value
    assert (error.column, error.text) == (column, text)
    assert str(error).startswith(f"{context.kind} {text!r}, column {column}: ")
    assert words in str(error) and "\n" not in str(error)


def test_the_names_a_context_may_read_can_be_narrowed() -> None:
    """Given a batch's columns, a rule reading another column is refused, naming it."""
    with pytest.raises(ExpressionError, match="'missing' is not a name data rules can read"):
        parse("missing > 0", DATA_RULE, names=["amount", "kind"])


ATTACKS = [
    "__import__('os').system('true')",
    "().__class__.__bases__",
    "amount.real > 0",
    "[1][0]",
    "lambda: 1",
    "(lambda: 1)()",
    "[x for x in (1, 2)]",
    "{x for x in (1, 2)}",
    "(x := 1)",
    "f'{amount}'",
    "open('/etc/passwd')",
    "getattr(amount, 'real')",
    "eval('1')",
    "(select 1) > 0",
    "read_csv('/etc/passwd') is null",
    "amount > 0; drop table batch",
    "getenv('HOME') = ''",
    "abs(*amount)",
    "{'a': 1}",
]


@pytest.mark.parametrize("context", CONTEXTS, ids=lambda context: context.kind)
@pytest.mark.parametrize("attack", ATTACKS)
def test_code_is_refused_in_every_context(attack: str, context: Context) -> None:
    """Imports, attributes, indexing, lambdas, comprehensions, other functions, queries
    and statements never get past the parser, whatever the context."""
    with pytest.raises(ExpressionError):
        parse(attack, context)


def test_a_quoted_name_cannot_break_out_of_its_quotes() -> None:
    """A column named like an injection is quoted, quotes doubled, and read as one name."""
    name = 'a" OR 1=1 --'
    expression = parse('"a"" OR 1=1 --" > 0', DATA_RULE, names=[name])
    connection = duckdb.connect()
    connection.register("frame", pd.DataFrame({name: [1, -1]}))
    sql = f"SELECT count(*) FROM frame WHERE {expression.to_sql()}"
    assert connection.execute(sql).fetchone() == (1,)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [(">= 0.8", (">=", 0.8)), ("<-1e-3", ("<", -0.001)), ("== 1", ("==", 1.0))],
)
def test_gate_thresholds_are_one_comparison_with_a_number(
    text: str, parsed: tuple[str, float]
) -> None:
    """A gate threshold is the right-hand half of a comparison."""
    assert parse_threshold(text) == parsed


@pytest.mark.parametrize("text", ["at least 0.8", ">= roc_auc", ">= 0.8 and <= 0.9", "!= 1"])
def test_other_thresholds_are_refused(text: str) -> None:
    """Anything else is a config error that shows the form to write."""
    with pytest.raises(ConfigError, match=re.escape('not a comparison; write e.g. ">= 0.80"')):
        parse_threshold(text)


def test_config_check_refuses_a_keyword_called_as_a_function(tmp_path: Path) -> None:
    """`distinct(age)` fails `keel config check` with one sentence at its line, instead of
    passing and then crashing ingest inside DuckDB."""
    (tmp_path / "keel.yaml").write_text(
        "name: p\nsources:\n  people:\n    kind: csv\n    path: people.csv\n"
        "    checks:\n      rules:\n        - {name: r, expr: 'distinct(age)'}\n"
    )
    result = keel("config", "check", "--project", str(tmp_path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert re.match(rf"error: {re.escape(str(tmp_path / 'keel.yaml'))}:8(:\d+)?: ", line)
    assert line.endswith(
        "sources.people.checks.rules[0].expr: data rule 'distinct(age)', column 1: 'distinct' "
        "is not a function data rules may call (allowed: abs, ceil, coalesce, contains, "
        "date_diff, date_part, datediff, day, ends_with, epoch, exp, floor, greatest, hour, "
        "isinf, isnan, least, length, ln, log, lower, ltrim, month, nullif, pow, power, "
        "regexp_full_match, regexp_matches, round, rtrim, sign, sqrt, starts_with, strlen, "
        "trim, upper, year)"
    )


# -- the two back-ends agree ---------------------------------------------------------------

TEXT = pd.StringDtype("python")  # pandas' nullable text with Kleene comparisons
FRAME = pd.DataFrame(
    {
        "amount": pd.array([5, -3, None, 0, -1, 7], dtype="Int64"),
        "kind": pd.array(["sale", "refund", "refund", None, "sale", None], dtype=TEXT),
        "rate": pd.array([0.5, None, 2.0, 1.5, None, -0.5], dtype="Float64"),
    }
)
# each rule, and the same condition written in pandas' nullable (Kleene) logic
RULES = {
    "amount >= 0 or kind == 'refund'": lambda f: (f.amount >= 0) | (f.kind == "refund"),
    "amount > 0 and rate < 1": lambda f: (f.amount > 0) & (f.rate < 1),
    "not (rate >= 1)": lambda f: ~(f.rate >= 1),
    "kind in ('sale', 'gift')": lambda f: f.kind.isin(["sale", "gift"]).mask(f.kind.isna()),
    "kind is null or amount * 2 < rate": lambda f: f.kind.isna() | (f.amount * 2 < f.rate),
    "-1 <= amount <= 5": lambda f: (f.amount >= -1) & (f.amount <= 5),
    "coalesce(rate, 0) + amount > 0": lambda f: (f.rate.fillna(0) + f.amount) > 0,
}


@functools.cache
def _frame_in_duckdb() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.register("frame", FRAME)
    return connection


def _duckdb(sql: str) -> list[bool | None]:
    rows = _frame_in_duckdb().execute(f"SELECT {sql} FROM frame").fetchall()
    return [row[0] for row in rows]


def _python(text: str, context: Context = DATA_RULE) -> list[Any]:
    expression = parse(text, context, names=FRAME.columns)
    records = FRAME.astype(object).where(FRAME.notna(), None).to_dict("records")
    return [expression.evaluate(row) for row in records]


@pytest.mark.parametrize("text", list(RULES))
def test_sql_and_python_agree_with_pandas_on_nulls(text: str) -> None:
    """The compiled SQL, the Python evaluation and pandas' own nullable logic give the
    same true / false / unknown for every row, nulls included."""
    expected = [None if pd.isna(value) else bool(value) for value in RULES[text](FRAME)]
    sql = parse(text, DATA_RULE, names=FRAME.columns).to_sql()
    assert _duckdb(sql) == expected
    assert _python(text) == expected


DATA_VALUE = dataclasses.replace(DATA_RULE, condition=False)  # a rule's arithmetic, on its own
NUMBERS = st.sampled_from(["amount", "rate", "1", "2", "0", "-3", "2.5", "null"])


def _numeric(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "//", "%"]), inner)
    calls = st.tuples(st.sampled_from(["abs", "coalesce", "least", "greatest"]), inner, inner)
    return st.one_of(
        binary.map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        calls.map(lambda t: f"{t[0]}({t[1]})" if t[0] == "abs" else f"{t[0]}({t[1]}, {t[2]})"),
        inner.map(lambda x: f"(-{x})"),
    )


def _conditions(numbers: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    compare = st.tuples(numbers, st.sampled_from(["<", "<=", "==", "!=", ">", ">="]), numbers)
    atoms = st.one_of(
        compare.map(" ".join),
        numbers.map(lambda x: f"{x} is null"),
        st.tuples(numbers, numbers).map(lambda t: f"{t[0]} in (1, {t[1]}, null)"),
    )
    return st.recursive(
        atoms,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(
                lambda t: f"({' '.join(t)})"
            ),
            inner.map(lambda x: f"(not {x})"),
        ),
        max_leaves=4,
    )


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, float) or isinstance(right, float):
        return left is not None and right is not None and math.isclose(left, right, abs_tol=1e-9)
    return bool(left == right)


@settings(max_examples=60, deadline=None)
@given(_conditions(st.recursive(NUMBERS, _numeric, max_leaves=3)))
def test_sql_and_python_agree_on_random_rules(text: str) -> None:
    """For generated rules over nullable columns, both back-ends give the same answer on
    every row (arithmetic, division by zero, comparisons, in, is null, and/or/not)."""
    sql = parse(text, DATA_RULE, names=FRAME.columns).to_sql()
    assert _duckdb(sql) == _python(text)


@settings(max_examples=40, deadline=None)
@given(st.recursive(NUMBERS, _numeric, max_leaves=4))
def test_sql_and_python_agree_on_random_arithmetic(text: str) -> None:
    """Values, not just truths: the same numbers (or null) on every row."""
    sql = parse(text, DATA_VALUE, names=FRAME.columns).to_sql()
    assert all(map(_same, _duckdb(sql), _python(text, DATA_VALUE)))
