"""Business-rule expressions: a small, checked subset of SQL run by DuckDB.

A rule such as ``end_date >= start_date`` or ``amount >= 0 or kind == 'refund'`` is
tokenised and every token checked against a whitelist: column names of the batch,
literals, comparison / arithmetic / boolean operators, and a short list of pure scalar
functions. Anything else (a subquery, a table function, a statement separator, a
comment) is refused before DuckDB sees the text, so a rule can read the row it is given
and nothing more. Python's ``eval`` is never used.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from keel.data.batch import quote

__all__ = ["FUNCTIONS", "KEYWORDS", "RuleError", "columns_of", "to_sql"]

_KEYWORD_TEXT = """
and or not is null true false in between like ilike distinct
interval day days hour hours minute minutes second seconds month months year years week weeks
"""
_FUNCTION_TEXT = """
abs round floor ceil sign sqrt ln log exp pow power least greatest coalesce nullif lower upper
length strlen trim ltrim rtrim starts_with ends_with contains regexp_matches regexp_full_match
date_diff datediff date_part year month day hour epoch isnan isinf
"""
KEYWORDS = frozenset(_KEYWORD_TEXT.split())
FUNCTIONS = frozenset(_FUNCTION_TEXT.split())
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)
    | (?P<string>'(?:[^']|'')*')
    | (?P<quoted>"(?:[^"]|"")+")
    | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
    | (?P<op>==|!=|<>|>=|<=|<|>|=|\+|-|\*|/|%|\(|\)|,|\|\|)
    )""",
    re.VERBOSE,
)


class RuleError(ValueError):
    """The expression uses something outside the rule grammar."""


def _tokens(expr: str) -> Iterable[tuple[str, str]]:
    position, end = 0, len(expr.rstrip())
    while position < end:
        match = _TOKEN.match(expr, position)
        if match is None or match.end() == position:
            raise RuleError(f"cannot read '{expr[position : position + 12]}' in rule '{expr}'")
        kind = match.lastgroup or ""
        yield kind, match.group(kind)
        position = match.end()


def columns_of(expr: str) -> list[str]:
    """The column names an expression reads, in order of first use."""
    seen: list[str] = []
    tokens = list(_tokens(expr))
    for index, (kind, text) in enumerate(tokens):
        name = _column_name(kind, text, tokens[index + 1 : index + 2])
        if name is not None and name not in seen:
            seen.append(name)
    return seen


def _column_name(kind: str, text: str, following: list[tuple[str, str]]) -> str | None:
    if kind == "quoted":
        return text[1:-1].replace('""', '"')
    if kind != "name" or text.lower() in KEYWORDS:
        return None
    if following and following[0][1] == "(":
        if text.lower() not in FUNCTIONS:
            raise RuleError(f"'{text}' is not an allowed function (allowed: {_listed()})")
        return None
    return text


def to_sql(expr: str, columns: Iterable[str]) -> str:
    """The expression as DuckDB SQL over the batch; ``RuleError`` if it is not allowed."""
    known = set(columns)
    parts: list[str] = []
    tokens = list(_tokens(expr))
    for index, (kind, text) in enumerate(tokens):
        name = _column_name(kind, text, tokens[index + 1 : index + 2])
        if name is not None and name not in known:
            raise RuleError(f"rule reads column '{name}', which the batch does not have")
        parts.append(quote(name) if name is not None else text)
    if not parts:
        raise RuleError("the rule is empty")
    return " ".join(parts)


def _listed() -> str:
    return ", ".join(sorted(FUNCTIONS))
