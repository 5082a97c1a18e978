"""Alert rules as pure functions: a safe condition language and the alert lifecycle.

A rule's ``when`` is an expression of keel.yaml's one language (``keel.expressions``)
over named signals, e.g. ``drifted_features >= 3 or output_drift``; nothing is executed.

``decide`` is the whole lifecycle of one rule and subject: open when the condition
fires (unless the rule resolved within its cooldown), stay open while it fires, resolve
on its own after ``clear_after`` consecutive clear evaluations (hysteresis, so a signal
hovering at the threshold does not flap).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from keel.expressions import ALERT_CONDITION, Expression, parse

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


def check_expression(expression: str) -> Expression:
    """Parse a rule condition, refusing anything outside keel.yaml's expression language."""
    return _parsed(expression)


@functools.lru_cache(maxsize=512)
def _parsed(expression: str) -> Expression:
    return parse(expression, ALERT_CONDITION)


def evaluate(expression: str, signals: Mapping[str, Any]) -> bool:
    """Whether the condition holds for these signals (a missing signal is unknown, and a
    condition that is unknown does not fire)."""
    return _parsed(expression).holds(signals)


def names_in(expression: str) -> list[str]:
    """The signal names a condition reads, in order of first use."""
    return _parsed(expression).names


def summary(rule: Rule, subject: str, signals: Mapping[str, Any]) -> str:
    """One line for the alert: the rule, its condition, and what stands behind the names
    it reads (``signals["explain"]``, e.g. the drifted columns with statistic and effect)."""
    explain = signals.get("explain") or {}
    parts = [str(explain[name]) for name in names_in(rule.when) if explain.get(name)]
    detail = "; ".join(dict.fromkeys(parts))
    line = f"{rule.name}: {rule.when} on {subject}"
    return f"{line}: {detail}" if detail else line


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
