"""An action whose condition raises is skipped, and the failure is logged once, not per answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from keel.serving.backend import Prediction
from keel.serving.state import action_for


def _above_half(values: Mapping[str, Any]) -> bool:
    """A condition over the probability, which a regression's answer does not have."""
    return bool(values["probability"] >= 0.5)


def _failures(caplog: pytest.LogCaptureFixture, say: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "keel.serving" and say in r.message]


def test_a_failing_condition_is_logged_once_for_many_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Three answers without a probability: no action, and one warning naming the action
    and the error, not three."""
    actions = [(_above_half, "Call the customer (once-test)")]
    with caplog.at_level("WARNING", logger="keel.serving"):
        said = [action_for(actions, Prediction(prediction=3.2), {}) for _ in range(3)]
    assert said == [None, None, None]
    lines = _failures(caplog, "Call the customer (once-test)")
    assert len(lines) == 1
    assert "TypeError" in lines[0] and "'>=' not supported" in lines[0]


def test_each_distinct_failure_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A second, different error of the same action gets its own line."""
    actions = [(_above_half, "Email (distinct-test)")]
    with caplog.at_level("WARNING", logger="keel.serving"):
        action_for(actions, Prediction(prediction=3.2), {})
        action_for(actions, Prediction(prediction=1, probability="high"), {})
    lines = _failures(caplog, "Email (distinct-test)")
    assert len(lines) == 2 and "NoneType" in lines[0] and "'str'" in lines[1]
