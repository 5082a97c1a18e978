"""keel.yaml expressions: arithmetic and comparisons over the answer, and nothing else."""

from __future__ import annotations

import pytest

from keel.errors import ExpressionError
from keel.serving.backend import Prediction
from keel.serving.expressions import compile_expression
from keel.serving.state import action_for


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("probability >= 0.7", {"probability": 0.8}, True),
        ("plan == 'basic' and tenure < 3", {"plan": "basic", "tenure": 2}, True),
        ("0.9 if spend > 100 else 0.1", {"spend": 50}, 0.1),
        ("max(a, b) - abs(c)", {"a": 1, "b": 4, "c": -2}, 2),
        ("plan in ('basic', 'standard')", {"plan": "gold"}, False),
    ],
)
def test_expressions_evaluate_over_the_values(
    text: str, values: dict[str, object], expected: object
) -> None:
    """Comparisons, boolean logic, conditionals and a few functions work as in Python."""
    assert compile_expression(text)(values) == expected


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "().__class__.__bases__",
        "[x for x in range(3)]",
        "open('/etc/passwd')",
        "lambda: 1",
        "probability >=",
    ],
)
def test_anything_beyond_the_small_language_is_refused(text: str) -> None:
    """Calls other than min/max/abs/round, attributes, comprehensions and lambdas fail early."""
    with pytest.raises(ExpressionError):
        compile_expression(text)


def test_the_first_matching_action_is_said() -> None:
    """Actions are tried in order; the first whose condition holds gives the words."""
    actions = [
        (compile_expression("probability >= 0.9"), "Call now"),
        (compile_expression("probability >= 0.5"), "Email this week"),
    ]
    answer = Prediction(prediction=1, probability=0.6, confidence=0.6)
    assert action_for(actions, answer, {}) == "Email this week"


def test_a_condition_that_cannot_apply_does_not_fire() -> None:
    """A condition over a missing value (a regression has no probability) is skipped."""
    actions = [(compile_expression("probability >= 0.5"), "Call")]
    assert action_for(actions, Prediction(prediction=3.2), {}) is None
