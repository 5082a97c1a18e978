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


Value = Callable[[Mapping[str, Any]], Any]  # a compiled node: values in, its value out


class Evaluator:
    """Turns a checked tree into nested Python closures, once; calling the result
    evaluates it over a mapping with SQL's null logic (``None`` is unknown)."""

    def __init__(self, expression: Checked) -> None:
        self.expression = expression

    def build(self, node: ast.expr) -> Value:
        built: Value = getattr(self, f"_{type(node).__name__}")(node)
        return built

    def fail(self, node: ast.AST, reason: str) -> ExpressionError:
        expression = self.expression
        return ExpressionError(
            expression.text, expression.offset_of(node), reason, expression.context.kind
        )

    def guarded(self, node: ast.AST, compute: Callable[..., Any]) -> Callable[..., Any]:
        """``compute`` with a wrong type turned into an ExpressionError at ``node``."""

        def call(*args: Any) -> Any:
            try:
                return compute(*args)
            except (TypeError, ValueError, OverflowError) as error:
                reason = f"it cannot be computed for these values ({error})"
                raise self.fail(node, reason) from None

        return call

    def _Constant(self, node: ast.Constant) -> Value:
        value = node.value
        return lambda values: value

    def _Name(self, node: ast.Name) -> Value:
        name = self.expression.quoted.get(node.id, node.id)
        return lambda values: values.get(name)

    def _BoolOp(self, node: ast.BoolOp) -> Value:
        parts = [self.build(value) for value in node.values]
        stop = isinstance(node.op, ast.Or)  # the truth that decides: true for or, false for and

        def boolean(values: Mapping[str, Any]) -> Any:
            unknown, last = False, None
            for part in parts:
                last = part(values)
                if last is None:
                    unknown = True
                elif bool(last) is stop:
                    return last
            return None if unknown else last

        return boolean

    def _UnaryOp(self, node: ast.UnaryOp) -> Value:
        operand = self.build(node.operand)
        apply = self.guarded(node, _UNARY[type(node.op)])

        def unary(values: Mapping[str, Any]) -> Any:
            value = operand(values)
            return None if value is None else apply(value)

        return unary

    def _BinOp(self, node: ast.BinOp) -> Value:
        left, right = self.build(node.left), self.build(node.right)
        apply = self.guarded(node, _ARITHMETIC[type(node.op)])
        divides = isinstance(node.op, ast.Div | ast.FloorDiv | ast.Mod)

        def binary(values: Mapping[str, Any]) -> Any:
            a, b = left(values), right(values)
            if a is None or b is None or (divides and b == 0):
                return None  # SQL: dividing by zero is unknown
            return apply(a, b)

        return binary

    def _Compare(self, node: ast.Compare) -> Value:
        first = self.build(node.left)
        steps = [
            self._step(op, right) for op, right in zip(node.ops, node.comparators, strict=True)
        ]
        return self.guarded(node, lambda values: _all(steps, first(values), values))

    def _step(self, op: ast.cmpop, node: ast.expr) -> Callable[[Any, Mapping[str, Any]], Any]:
        """One link of a comparison chain: (its truth, the value the next link compares)."""
        if isinstance(op, ast.Is | ast.IsNot):
            wanted = isinstance(op, ast.Is)
            return lambda left, values: ((left is None) is wanted, None)
        if isinstance(op, ast.In | ast.NotIn):
            assert isinstance(node, ast.Tuple | ast.List)
            choices = [self.build(element) for element in node.elts]
            negate = isinstance(op, ast.NotIn)
            return lambda left, values: (
                _member(left, [choice(values) for choice in choices], negate),
                None,
            )
        right, compare = self.build(node), _ORDER[type(op)]

        def order(left: Any, values: Mapping[str, Any]) -> Any:
            value = right(values)
            truth = None if left is None or value is None else compare(left, value)
            return truth, value

        return order

    def _IfExp(self, node: ast.IfExp) -> Value:
        test, body, orelse = self.build(node.test), self.build(node.body), self.build(node.orelse)

        def choose(values: Mapping[str, Any]) -> Any:
            truth = test(values)
            if truth is None:
                return None
            return body(values) if truth else orelse(values)

        return choose

    def _Call(self, node: ast.Call) -> Value:
        assert isinstance(node.func, ast.Name)
        function = self.expression.context.functions[node.func.id].python
        if function is None:
            reason = f"{node.func.id} runs only in SQL, over a batch"
            return lambda values: _raise(self.fail(node, reason))
        args = [self.build(arg) for arg in node.args]
        apply = self.guarded(node, function)
        return lambda values: apply(*(arg(values) for arg in args))


_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.Not: operator.not_,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def _raise(error: Exception) -> Any:
    raise error


def _member(left: Any, choices: list[Any], negate: bool) -> bool | None:
    if left is None:
        return None
    if any(choice == left for choice in choices if choice is not None):
        return not negate
    return None if any(choice is None for choice in choices) else negate


def _all(
    steps: list[Callable[[Any, Mapping[str, Any]], Any]], left: Any, values: Mapping[str, Any]
) -> bool | None:
    """A comparison chain: false if any link is false, else unknown if any is unknown."""
    unknown = False
    for step in steps:
        truth, next_left = step(left, values)
        if truth is False:
            return False
        unknown = unknown or truth is None
        left = next_left
    return None if unknown else True
