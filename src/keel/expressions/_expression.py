"""A checked expression, and parsing text into one."""

from __future__ import annotations

import ast
import functools
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from keel.errors import ExpressionError
from keel.expressions._contexts import BY_KIND, GATE_THRESHOLD, Context
from keel.expressions._grammar import COMPARE, Checker
from keel.expressions._python import Evaluator
from keel.expressions._reading import Source, char_offset, read
from keel.expressions._sql import sql_of

__all__ = ["Expression", "check", "parse", "parse_threshold"]


@dataclass(frozen=True)
class Expression:
    """A checked expression: its text, its context and its tree."""

    text: str
    context: Context
    tree: ast.expr
    source: Source = field(repr=False, compare=False)

    @functools.cached_property
    def compiled(self) -> Callable[[Mapping[str, Any]], Any]:
        """The tree as Python closures, built on first use."""
        return Evaluator(self).build(self.tree)

    @property
    def quoted(self) -> Mapping[str, str]:
        return self.source.quoted

    def offset_of(self, node: ast.AST) -> int:
        """Where in ``text`` a node of the tree starts (0-based)."""
        return self.source.origin(char_offset(self.source.python, getattr(node, "col_offset", 0)))

    @property
    def names(self) -> list[str]:
        """The names the expression reads, in order of first use."""
        found = _names(self.tree, self.quoted)
        return list(dict.fromkeys(found))

    def evaluate(self, values: Mapping[str, Any]) -> Any:
        """The value over ``values``; a missing name is null. ``None`` means unknown."""
        return self.compiled(values)

    def holds(self, values: Mapping[str, Any]) -> bool:
        """Whether the expression is true over ``values`` (unknown does not hold)."""
        return bool(self.evaluate(values))

    def to_sql(self) -> str:
        """The expression as a DuckDB SQL expression, names as quoted identifiers."""
        if not self.context.sql:
            raise ExpressionError(self.text, 0, "only data rules run as SQL", self.context.kind)
        return sql_of(self.tree, self.quoted)


def parse(text: str, context: Context, names: Iterable[str] | None = None) -> Expression:
    """Check ``text`` against the grammar and ``context``; ``names`` narrows the names it
    may read (e.g. a batch's columns). An ``ExpressionError`` says what is wrong and where."""
    if not text.strip():
        raise ExpressionError(text, 0, "it is empty; write a condition", context.kind)
    source = read(text, context)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "invalid decimal literal": refused below
            tree = ast.parse(source.python, mode="eval").body
    except SyntaxError as error:
        raise _syntax(text, source, error, context) from None
    Checker(text, source, context, names).check(tree)
    if context.condition and _is_a_value(tree):
        reason = "it is a value, not a condition; compare it, e.g. amount + 1 > 0"
        raise ExpressionError(text, 0, reason, context.kind)
    return Expression(text, context, tree, source)


def _is_a_value(tree: ast.expr) -> bool:
    """Arithmetic, or a number or text on its own: never true or false."""
    if isinstance(tree, ast.Constant):
        return not isinstance(tree.value, bool) and tree.value is not None
    return isinstance(tree, ast.BinOp) or (
        isinstance(tree, ast.UnaryOp) and not isinstance(tree.op, ast.Not)
    )


_HINTS = {
    "between": "write low <= x <= high instead of between",
    "like": "use starts_with, ends_with, contains or regexp_matches instead of like",
    "ilike": "use lower(x) with starts_with, ends_with or contains instead of ilike",
    "select": "a rule reads the row it is given; it cannot run a query",
}


def _syntax(text: str, source: Source, error: SyntaxError, context: Context) -> ExpressionError:
    offset = (error.offset or 0) - 1
    if offset < 0 or offset >= len(source.python.rstrip()):
        return ExpressionError(text, len(text.rstrip()), "it ends too early", context.kind)
    at = source.origin(offset)
    if "never closed" in (error.msg or "") or "unmatched" in (error.msg or ""):
        return ExpressionError(text, at, "its brackets do not pair up", context.kind)
    token = (text[at:].split() or [""])[0][:20]
    hint = _HINTS.get(token.lower(), "write e.g. amount >= 0 and kind == 'refund'")
    return ExpressionError(text, at, f"'{token}' cannot stand here; {hint}", context.kind)


def parse_threshold(text: str) -> tuple[str, float]:
    """A gate threshold, ``">= 0.8"``, as ``(">=", 0.8)``: one comparison with a number."""
    prefix = "value "
    try:
        tree = parse(prefix + text, GATE_THRESHOLD).tree
    except ExpressionError as error:
        raise _not_a_threshold(text, max(error.column - 1 - len(prefix), 0)) from None
    if not (
        isinstance(tree, ast.Compare)
        and isinstance(tree.left, ast.Name)
        and len(tree.ops) == 1
        and isinstance(tree.ops[0], ast.GtE | ast.LtE | ast.Gt | ast.Lt | ast.Eq)
    ):
        raise _not_a_threshold(text, 0)
    bound = _number(tree.comparators[0])
    if bound is None:
        raise _not_a_threshold(text, 0)
    return COMPARE[type(tree.ops[0])], bound


def _not_a_threshold(text: str, at: int) -> ExpressionError:
    return ExpressionError(
        text, at, 'it is not a comparison; write e.g. ">= 0.80"', GATE_THRESHOLD.kind
    )


def _number(node: ast.expr) -> float | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _number(node.operand)
        return None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return None if isinstance(node.value, bool) else float(node.value)
    return None


def _names(tree: ast.expr, quoted: Mapping[str, str]) -> Iterator[str]:
    calls = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    nodes = sorted(
        (node for node in ast.walk(tree) if isinstance(node, ast.Name) and id(node) not in calls),
        key=lambda node: node.col_offset,
    )
    for node in nodes:
        yield quoted.get(node.id, node.id)


def check(text: str, kind: str) -> None:
    """Check ``text`` as an expression of ``kind`` (a context's ``kind``, e.g. "data rule")."""
    if kind == GATE_THRESHOLD.kind:
        parse_threshold(text)
    else:
        parse(text, BY_KIND[kind])
