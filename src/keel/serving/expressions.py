"""Small, safe expressions from keel.yaml: action conditions and rule fallbacks.

``probability >= 0.7``, ``plan == 'basic' and tenure < 3``, ``0.9 if spend > 100 else 0.1``.
The text is parsed once; only literals, names, arithmetic, comparisons, boolean logic,
conditional expressions and ``min``/``max``/``abs``/``round`` are accepted, so a
keel.yaml cannot run arbitrary code. Names are looked up in the mapping the expression
is evaluated against. Pure: no I/O.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from typing import Any

from keel.errors import ServingError

__all__ = ["compile_expression"]

_FUNCTIONS: dict[str, Any] = {"min": min, "max": max, "abs": abs, "round": round}
_NODES = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.BinOp,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.Mod,
    ast.FloorDiv,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.UAdd,
    ast.Compare,
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.In,
    ast.NotIn,
    ast.Is,
    ast.IsNot,
    ast.IfExp,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.Tuple,
    ast.List,
    ast.Call,
)


def compile_expression(text: str) -> Callable[[Mapping[str, Any]], Any]:
    """A function of a mapping that evaluates ``text`` over it."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        raise ServingError(f"'{text}' is not an expression keel can evaluate") from None
    for node in ast.walk(tree):
        _allow(node, text)
    code = compile(tree, "<keel.yaml>", "eval")

    def evaluate(values: Mapping[str, Any]) -> Any:
        return eval(code, {"__builtins__": {}}, {**_FUNCTIONS, **values})  # checked above

    return evaluate


def _allow(node: ast.AST, text: str) -> None:
    if not isinstance(node, _NODES):
        raise ServingError(f"'{text}' uses {type(node).__name__}, which keel.yaml may not use")
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in _FUNCTIONS or node.keywords:
            raise ServingError(f"'{text}' calls something other than min, max, abs or round")
