"""Back-end one: evaluating a checked tree in Python, with SQL's null logic."""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from keel.errors import ExpressionError
from keel.expressions._contexts import Context

__all__ = ["Checked", "Evaluator"]


class Checked(Protocol):
    """What the evaluator needs of a checked expression."""

    @property
    def text(self) -> str: ...

    @property
    def context(self) -> Context: ...

    @property
    def quoted(self) -> Mapping[str, str]: ...

    def offset_of(self, node: ast.AST) -> int: ...


_ARITHMETIC: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_ORDER: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


class Evaluator:
    """Evaluates a checked tree with SQL's null logic."""

    def __init__(self, expression: Checked, values: Mapping[str, Any]) -> None:
        self.expression, self.values = expression, values

    def value(self, node: ast.expr) -> Any:
        try:
            return getattr(self, f"_{type(node).__name__}")(node)
        except (TypeError, ValueError, OverflowError) as error:
            raise ExpressionError(
                self.expression.text,
                self.expression.offset_of(node),
                f"it cannot be computed for these values ({error})",
                self.expression.context.kind,
            ) from None

    def _Constant(self, node: ast.Constant) -> Any:
        return node.value

    def _Name(self, node: ast.Name) -> Any:
        return self.values.get(self.expression.quoted.get(node.id, node.id))

    def _BoolOp(self, node: ast.BoolOp) -> Any:
        stop = isinstance(node.op, ast.Or)  # the truth that decides: true for or, false for and
        unknown, last = False, None
        for part in node.values:
            last = self.value(part)
            if last is None:
                unknown = True
            elif bool(last) is stop:
                return last
        return None if unknown else last

    def _UnaryOp(self, node: ast.UnaryOp) -> Any:
        operand = self.value(node.operand)
        if operand is None:
            return None
        if isinstance(node.op, ast.Not):
            return not operand
        return -operand if isinstance(node.op, ast.USub) else +operand

    def _BinOp(self, node: ast.BinOp) -> Any:
        left, right = self.value(node.left), self.value(node.right)
        if left is None or right is None:
            return None
        if right == 0 and isinstance(node.op, ast.Div | ast.FloorDiv | ast.Mod):
            return None
        return _ARITHMETIC[type(node.op)](left, right)

    def _Compare(self, node: ast.Compare) -> Any:
        results: list[bool | None] = []
        left = self.value(node.left)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.Is | ast.IsNot):
                results.append((left is None) is isinstance(op, ast.Is))
                continue
            right = self._choices(right_node) if isinstance(op, ast.In | ast.NotIn) else None
            if right is None:
                right = self.value(right_node)
                results.append(_order(op, left, right))
            else:
                results.append(_member(left, right, isinstance(op, ast.NotIn)))
            left = right
        return _all(results)

    def _choices(self, node: ast.expr) -> list[Any]:
        assert isinstance(node, ast.Tuple | ast.List)
        return [self.value(element) for element in node.elts]

    def _IfExp(self, node: ast.IfExp) -> Any:
        test = self.value(node.test)
        if test is None:
            return None
        return self.value(node.body) if test else self.value(node.orelse)

    def _Call(self, node: ast.Call) -> Any:
        assert isinstance(node.func, ast.Name)
        function = self.expression.context.functions[node.func.id]
        if function.python is None:
            raise ExpressionError(
                self.expression.text,
                self.expression.offset_of(node),
                f"{node.func.id} runs only in SQL, over a batch",
                self.expression.context.kind,
            )
        return function.python(*(self.value(arg) for arg in node.args))


def _order(op: ast.cmpop, left: Any, right: Any) -> bool | None:
    if left is None or right is None:
        return None
    return _ORDER[type(op)](left, right)


def _member(left: Any, choices: list[Any], negate: bool) -> bool | None:
    if left is None:
        return None
    if any(choice == left for choice in choices if choice is not None):
        return not negate
    return None if any(choice is None for choice in choices) else negate


def _all(results: list[bool | None]) -> bool | None:
    if any(result is False for result in results):
        return False
    return None if any(result is None for result in results) else True
