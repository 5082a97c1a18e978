"""Alert rules as pure functions: a safe condition language and the alert lifecycle.

A rule's ``when`` is a small expression over named signals, e.g.
``drifted_features >= 3 or output_drift``. Only names, numbers, strings, booleans,
comparisons, ``and``/``or``/``not`` and arithmetic are allowed; nothing is executed.

``decide`` is the whole lifecycle of one rule and subject: open when the condition
fires (unless the rule resolved within its cooldown), stay open while it fires, resolve
on its own after ``clear_after`` consecutive clear evaluations (hysteresis, so a signal
hovering at the threshold does not flap).
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from keel.errors import AlertError

__all__ = [
    "Action",
    "AlertState",
    "Rule",
    "check_expression",
    "decide",
    "evaluate",
    "names_in",
    "summary",
]

Severity = Literal["critical", "warning", "info"]
Action = Literal["open", "refresh", "clearing", "resolve", "suppressed", "none"]

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_ARITH: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


@dataclass(frozen=True)
class Rule:
    """One alert rule: when it fires, how loud it is, and how it settles."""

    name: str
    when: str
    severity: Severity = "warning"
    runbook: str | None = None
    cooldown: float = 3600.0
    clear_after: int = 2
    auto_resolve: bool = True


@dataclass(frozen=True)
class AlertState:
    """What the store knows about a rule and subject: its open alert, its last resolve."""

    open: bool
    clear_count: int = 0
    resolved_at: float | None = None


def check_expression(expression: str) -> ast.Expression:
    """Parse a rule condition, refusing anything but the small safe language."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        raise AlertError(f"alert condition {expression!r} is not a valid expression") from None
    allowed = (
        ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub,
        ast.Compare, ast.Name, ast.Load, ast.Constant, ast.BinOp, *_COMPARE, *_ARITH,
    )  # fmt: skip
    for node in ast.walk(tree):
        if not isinstance(node, allowed):
            raise AlertError(
                f"alert condition {expression!r} uses {type(node).__name__}; only names, "
                "numbers, comparisons, and/or/not and + - * / are allowed"
            )
    return tree


def evaluate(expression: str, signals: Mapping[str, Any]) -> bool:
    """Whether the condition holds for these signals (a missing signal never fires)."""
    tree = check_expression(expression)
    try:
        return bool(_eval(tree.body, signals))
    except _Missing:
        return False


def names_in(expression: str) -> list[str]:
    """The signal names a condition reads, in order of first use."""
    tree = check_expression(expression)
    names = [node.id for node in ast.walk(tree) if isinstance(node, ast.Name)]
    return list(dict.fromkeys(names))


def summary(rule: Rule, subject: str, signals: Mapping[str, Any]) -> str:
    """One line for the alert: the rule, its condition, and what stands behind the names
    it reads (``signals["explain"]``, e.g. the drifted columns with statistic and effect)."""
    explain = signals.get("explain") or {}
    parts = [str(explain[name]) for name in names_in(rule.when) if explain.get(name)]
    detail = "; ".join(dict.fromkeys(parts))
    line = f"{rule.name}: {rule.when} on {subject}"
    return f"{line}: {detail}" if detail else line


class _Missing(Exception):
    pass


def _eval(node: ast.AST, signals: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in signals or signals[node.id] is None:
            raise _Missing(node.id)
        return signals[node.id]
    if isinstance(node, ast.BoolOp):
        values = (_eval(value, signals) for value in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, signals)
        return (not value) if isinstance(node.op, ast.Not) else -value
    if isinstance(node, ast.BinOp):
        return _ARITH[type(node.op)](_eval(node.left, signals), _eval(node.right, signals))
    if isinstance(node, ast.Compare):
        left = _eval(node.left, signals)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _eval(right_node, signals)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    raise AlertError(f"unsupported expression node {type(node).__name__}")


def decide(state: AlertState, firing: bool, now: float, rule: Rule) -> Action:
    """The next step for one rule and subject, given whether its condition fires now."""
    if firing:
        if state.open:
            return "refresh"
        recently = state.resolved_at is not None and now - state.resolved_at < rule.cooldown
        return "suppressed" if recently else "open"
    if not state.open:
        return "none"
    if rule.auto_resolve and state.clear_count + 1 >= rule.clear_after:
        return "resolve"
    return "clearing"
