"""The grammar: one walk over the parsed tree that refuses anything outside it."""

from __future__ import annotations

import ast
from collections.abc import Iterable

from keel.errors import ExpressionError
from keel.expressions._contexts import Context, Function
from keel.expressions._reading import Source, char_offset

__all__ = ["BINARY", "COMPARE", "Checker"]

BINARY: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
}
COMPARE: dict[type[ast.cmpop], str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
}
_WHAT = {
    "Attribute": "attribute access (a.b)",
    "Subscript": "indexing (a[b])",
    "Lambda": "a lambda",
    "ListComp": "a comprehension",
    "SetComp": "a comprehension",
    "DictComp": "a comprehension",
    "GeneratorExp": "a comprehension",
    "NamedExpr": "assignment (:=)",
    "JoinedStr": "an f-string",
    "Starred": "unpacking (*)",
    "Dict": "a mapping",
    "Set": "a set",
    "Await": "await",
    "Yield": "yield",
    "YieldFrom": "yield",
}


class Checker:
    """Walks the tree once, refusing anything outside the grammar for this context."""

    def __init__(self, text: str, source: Source, context: Context, names: Iterable[str] | None):
        self.text, self.source, self.context = text, source, context
        self.names = context.names if names is None else frozenset(names)

    def fail(self, node: ast.AST, reason: str) -> ExpressionError:
        if isinstance(node, ast.Attribute | ast.Subscript):  # point at the '.' or '['
            node = ast.Constant(None, col_offset=node.value.end_col_offset or 0)
        column = char_offset(self.source.python, getattr(node, "col_offset", 0))
        return ExpressionError(self.text, self.source.origin(column), reason, self.context.kind)

    def check(self, node: ast.expr) -> None:
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            what = _WHAT.get(type(node).__name__, type(node).__name__)
            raise self.fail(node, f"{what} is not part of keel.yaml's expression language")
        method(node)

    def _Constant(self, node: ast.Constant) -> None:
        if not isinstance(node.value, bool | int | float | str | None):
            raise self.fail(node, f"{node.value!r} is not a number, text, true, false or null")

    def _Name(self, node: ast.Name) -> None:
        name = self.source.quoted.get(node.id, node.id)
        if self.names is not None and name not in self.names:
            known = ", ".join(sorted(self.names)) or "none"
            raise self.fail(node, f"'{name}' is not a name {self.context.kind}s can read "
                                  f"(it can read: {known})")  # fmt: skip

    def _BoolOp(self, node: ast.BoolOp) -> None:
        for value in node.values:
            self.check(value)

    def _UnaryOp(self, node: ast.UnaryOp) -> None:
        if isinstance(node.op, ast.Invert):
            raise self.fail(node, "'~' is not part of keel.yaml's expression language")
        self.check(node.operand)

    def _BinOp(self, node: ast.BinOp) -> None:
        if type(node.op) not in BINARY:
            raise self.fail(node, "only + - * / // and % are allowed between values")
        self.check(node.left)
        self.check(node.right)

    def _Compare(self, node: ast.Compare) -> None:
        self.check(node.left)
        for op, right in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.Is | ast.IsNot):
                if not (isinstance(right, ast.Constant) and right.value is None):
                    raise self.fail(right, "'is' compares only with null: write 'x is null'")
            elif isinstance(op, ast.In | ast.NotIn):
                self._choices(right)
                continue
            self.check(right)

    def _choices(self, node: ast.expr) -> None:
        if not isinstance(node, ast.Tuple | ast.List) or not node.elts:
            raise self.fail(node, "'in' takes a list of values in brackets: x in ('a', 'b')")
        for element in node.elts:
            self.check(element)

    def _IfExp(self, node: ast.IfExp) -> None:
        for part in (node.test, node.body, node.orelse):
            self.check(part)

    def _Call(self, node: ast.Call) -> None:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        function = self.context.functions.get(name or "")
        if name is None or function is None:
            allowed = ", ".join(sorted(self.context.functions)) or "none"
            called = f"'{name}'" if name else "this"
            raise self.fail(node, f"{called} is not a function {self.context.kind}s may call "
                                  f"(allowed: {allowed})")  # fmt: skip
        if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
            raise self.fail(node, f"{name} takes plain arguments, without names or *")
        count = len(node.args)
        if count < function.least or (function.most is not None and count > function.most):
            raise self.fail(node, f"{name} takes {_arity(function)}, not {count}")
        for arg in node.args:
            self.check(arg)


def _arity(function: Function) -> str:
    if function.most == function.least:
        return f"{function.least} argument{'s' if function.least != 1 else ''}"
    if function.most is None:
        return f"at least {function.least} argument{'s' if function.least != 1 else ''}"
    return f"{function.least} to {function.most} arguments"
