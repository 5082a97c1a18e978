"""Where an expression is used: the functions each place may call and the names it may
read."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

__all__ = [
    "ACTION_CONDITION",
    "ALERT_CONDITION",
    "BY_KIND",
    "CONTEXTS",
    "DATA_RULE",
    "GATE_THRESHOLD",
    "PYTHON_FUNCTIONS",
    "SERVING_RULE",
    "SQL_FUNCTIONS",
    "Context",
    "Function",
]


@dataclass(frozen=True)
class Function:
    """A function a context may call: its arity and its Python implementation (``None``
    for a function only the SQL back-end runs). Arguments arrive with nulls as ``None``."""

    least: int
    most: int | None
    python: Callable[..., Any] | None = None


@dataclass(frozen=True)
class Context:
    """Where an expression is used: what it is called in messages, the functions it may
    call, the names it may read (``None``: any name), and its spellings."""

    kind: str
    functions: Mapping[str, Function] = field(default_factory=dict)
    names: frozenset[str] | None = None
    sql_quoted_names: bool = False
    sql: bool = False
    condition: bool = True  # true or false (or unknown) for each row, not a number or text


# -- functions --------------------------------------------------------------------------


def _strict(function: Callable[..., Any]) -> Callable[..., Any]:
    """Null in, null out: what SQL's scalar functions do."""

    def call(*args: Any) -> Any:
        return None if any(arg is None for arg in args) else function(*args)

    return call


def _round_half_away(value: float, digits: int = 0) -> float:
    """DuckDB's ``round``: halves away from zero, not Python's to-even."""
    exponent = Decimal(1).scaleb(-int(digits))
    return float(Decimal(repr(value)).quantize(exponent, rounding=ROUND_HALF_UP))


def _least_greatest(pick: Callable[..., Any]) -> Callable[..., Any]:
    """DuckDB's ``least``/``greatest`` skip nulls; null only when every argument is."""

    def call(*args: Any) -> Any:
        present = [arg for arg in args if arg is not None]
        return pick(present) if present else None

    return call


def _coalesce(*args: Any) -> Any:
    return next((arg for arg in args if arg is not None), None)


def _nullif(a: Any, b: Any) -> Any:
    return None if a is not None and b is not None and a == b else a


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


PYTHON_FUNCTIONS: dict[str, Function] = {
    "min": Function(1, None, _strict(min)),
    "max": Function(1, None, _strict(max)),
    "abs": Function(1, 1, _strict(abs)),
    "round": Function(1, 2, _strict(round)),
}

SQL_FUNCTIONS: dict[str, Function] = {
    "abs": Function(1, 1, _strict(abs)),
    "round": Function(1, 2, _strict(_round_half_away)),
    "floor": Function(1, 1, _strict(math.floor)),
    "ceil": Function(1, 1, _strict(math.ceil)),
    "sign": Function(1, 1, _strict(_sign)),
    "sqrt": Function(1, 1, _strict(math.sqrt)),
    "ln": Function(1, 1, _strict(math.log)),
    "log": Function(1, 1, _strict(math.log10)),
    "exp": Function(1, 1, _strict(math.exp)),
    "pow": Function(2, 2, _strict(math.pow)),
    "power": Function(2, 2, _strict(math.pow)),
    "least": Function(1, None, _least_greatest(min)),
    "greatest": Function(1, None, _least_greatest(max)),
    "coalesce": Function(1, None, _coalesce),
    "nullif": Function(2, 2, _nullif),
    "lower": Function(1, 1, _strict(str.lower)),
    "upper": Function(1, 1, _strict(str.upper)),
    "length": Function(1, 1, _strict(len)),
    "strlen": Function(1, 1, _strict(lambda s: len(s.encode()))),
    "trim": Function(1, 1, _strict(lambda s: s.strip(" "))),
    "ltrim": Function(1, 1, _strict(lambda s: s.lstrip(" "))),
    "rtrim": Function(1, 1, _strict(lambda s: s.rstrip(" "))),
    "starts_with": Function(2, 2, _strict(str.startswith)),
    "ends_with": Function(2, 2, _strict(str.endswith)),
    "contains": Function(2, 2, _strict(operator.contains)),
    "isnan": Function(1, 1, _strict(math.isnan)),
    "isinf": Function(1, 1, _strict(math.isinf)),
    # DuckDB's regular expressions (RE2) and calendar arithmetic run only in SQL
    "regexp_matches": Function(2, 3),
    "regexp_full_match": Function(2, 3),
    "date_diff": Function(3, 3),
    "datediff": Function(3, 3),
    "date_part": Function(2, 2),
    "year": Function(1, 1),
    "month": Function(1, 1),
    "day": Function(1, 1),
    "hour": Function(1, 1),
    "epoch": Function(1, 1),
}

DATA_RULE = Context("data rule", SQL_FUNCTIONS, sql_quoted_names=True, sql=True)
ALERT_CONDITION = Context("alert condition", PYTHON_FUNCTIONS)
ACTION_CONDITION = Context("action condition", PYTHON_FUNCTIONS)
SERVING_RULE = Context("serving rule", PYTHON_FUNCTIONS, condition=False)
GATE_THRESHOLD = Context("gate threshold", names=frozenset({"value"}))
CONTEXTS = (DATA_RULE, ALERT_CONDITION, ACTION_CONDITION, SERVING_RULE, GATE_THRESHOLD)

BY_KIND = {context.kind: context for context in CONTEXTS}
