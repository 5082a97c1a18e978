"""Action conditions and rule fallbacks of ``serving:`` as functions of a row.

``probability >= 0.7``, ``plan == 'basic' and tenure < 3``, ``0.9 if spend > 100 else 0.1``:
expressions of keel.yaml's one language (``keel.expressions``), checked once and evaluated in
Python over the mapping they are given. Pure: no I/O, no ``eval``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from keel.errors import ExpressionError
from keel.expressions import SERVING_RULE, Context, parse

__all__ = ["compile_expression"]


def compile_expression(
    text: str, context: Context = SERVING_RULE
) -> Callable[[Mapping[str, Any]], Any]:
    """A function of a mapping that evaluates ``text`` over it. An answer that is unknown
    (a name it reads is missing or null) is an ``ExpressionError``: the condition does not
    apply, and a rule gives no answer."""
    expression = parse(text, context)

    def evaluate(values: Mapping[str, Any]) -> Any:
        value = expression.evaluate(values)
        if value is None:
            missing = [name for name in expression.names if values.get(name) is None]
            reason = f"it is unknown here: {', '.join(missing) or 'a value'} is missing or null"
            raise ExpressionError(text, 0, reason, context.kind)
        return value

    return evaluate
