"""Alert rules: the safe condition language and the open/refresh/resolve lifecycle."""

from __future__ import annotations

import pytest

from keel.errors import ExpressionError
from keel.monitoring.alerts.rules import AlertState, Rule, decide, evaluate


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("drifted_features > 0", True),
        ("drifted_features >= 3 or output_drift", False),
        ("roc_auc < 0.75 and not output_drift", True),
        ("0.5 < roc_auc < 0.8", True),
        ("rows * 2 - 1 == 999", True),
        ("missing_signal > 0", False),
    ],
)
def test_conditions_evaluate_over_signals(expression: str, expected: bool) -> None:
    """Comparisons, chains, and/or/not and arithmetic over named signals; missing never fires."""
    signals = {"drifted_features": 2, "output_drift": False, "roc_auc": 0.7, "rows": 500}
    assert evaluate(expression, signals) is expected


@pytest.mark.parametrize("expression", ["__import__('os').system('x')", "a.b > 1", "[1][0]", "x >"])
def test_anything_beyond_the_small_language_is_refused(expression: str) -> None:
    """Calls, attributes, subscripts and bad syntax are ExpressionErrors, never executed."""
    with pytest.raises(ExpressionError):
        evaluate(expression, {"a": 1, "x": 1})


RULE = Rule("drift", "x > 0", cooldown=600, clear_after=2)


@pytest.mark.parametrize(
    ("state", "firing", "now", "action"),
    [
        (AlertState(open=False), True, 1000.0, "open"),
        (AlertState(open=True), True, 1000.0, "refresh"),
        (AlertState(open=True, clear_count=0), False, 1000.0, "clearing"),
        (AlertState(open=True, clear_count=1), False, 1000.0, "resolve"),
        (AlertState(open=False, resolved_at=900.0), True, 1000.0, "suppressed"),
        (AlertState(open=False, resolved_at=100.0), True, 1000.0, "open"),
        (AlertState(open=False), False, 1000.0, "none"),
    ],
)
def test_lifecycle_decisions(state: AlertState, firing: bool, now: float, action: str) -> None:
    """Open once, refresh while firing, resolve after clear_after clear checks, cool down."""
    assert decide(state, firing, now, RULE) == action


def test_a_rule_without_auto_resolve_stays_open() -> None:
    """auto_resolve: false keeps the alert open however long the condition is clear."""
    rule = Rule("manual", "x > 0", auto_resolve=False)
    assert decide(AlertState(open=True, clear_count=10), False, 0.0, rule) == "clearing"
