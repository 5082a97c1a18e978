"""The one expression language of keel.yaml: data rules, alert and action conditions,
serving rules and gate thresholds.

The grammar is a small subset of Python expression syntax, parsed by ``ast``: names,
literals (numbers, ``'text'``, ``true``/``false``/``null``), arithmetic (``+ - * / // %``),
comparisons (chained, ``in (...)``, ``is null``), ``and``/``or``/``not``,
``a if condition else b``, and calls of the functions the context allows. Nothing else
(attributes, subscripts, lambdas, comprehensions, keyword arguments) gets through, and a
name starting with ``__`` is refused, so a keel.yaml cannot run code. The spellings keel.yaml
has always accepted are read too: ``=`` and ``<>``, ``AND``/``OR``/``NOT``/``IS``/``IN`` in
any case, and in data rules ``"a column"`` (SQL's quoted name; elsewhere a quoted name is
written with backticks, which work everywhere). Text is quoted with ``'``; a quote inside
is doubled (``'it''s'``).

A checked expression has two back-ends over the same tree: ``evaluate`` in Python over a
mapping, and ``to_sql`` as a DuckDB expression (data rules, so ingest stays vectorised). Both
use SQL's null logic: a missing or null name is unknown, unknown propagates through
arithmetic and comparisons, ``false and unknown`` is false, ``true or unknown`` is true, and
dividing by zero is unknown. A condition that is unknown does not hold.

Every fault is an ``ExpressionError`` naming the expression, the column of the offending
token and what to do. Pure: no I/O, no ``eval``.

    >>> rule = parse("amount >= 0 OR kind = 'refund'", DATA_RULE)
    >>> print(rule.to_sql())
    (("amount" >= 0) OR ("kind" = 'refund'))
    >>> rule.evaluate({"amount": -5, "kind": "refund"}), rule.evaluate({"amount": -5})
    (True, None)
    >>> parse("distinct(age)", DATA_RULE)
    Traceback (most recent call last):
    keel.errors.ExpressionError: data rule 'distinct(age)', column 1: 'distinct' is not a ...
"""

from __future__ import annotations

from keel.expressions._contexts import (
    ACTION_CONDITION,
    ALERT_CONDITION,
    CONTEXTS,
    DATA_RULE,
    GATE_THRESHOLD,
    PYTHON_FUNCTIONS,
    SERVING_RULE,
    SQL_FUNCTIONS,
    Context,
    Function,
)
from keel.expressions._expression import Expression, check, parse, parse_threshold

__all__ = [
    "ACTION_CONDITION",
    "ALERT_CONDITION",
    "CONTEXTS",
    "DATA_RULE",
    "GATE_THRESHOLD",
    "PYTHON_FUNCTIONS",
    "SERVING_RULE",
    "SQL_FUNCTIONS",
    "Context",
    "Expression",
    "Function",
    "check",
    "parse",
    "parse_threshold",
]
