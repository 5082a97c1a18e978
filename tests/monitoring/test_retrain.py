"""The retrain trigger: a pure policy, one run at a time, the outcome recorded and announced."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from keel.monitoring.alerts import AlertBook
from keel.monitoring.retrain import (
    RetrainPolicy,
    RetrainSignals,
    RetrainTrigger,
    should_retrain,
)
from keel.project import Project

POLICY = RetrainPolicy(
    on=frozenset({"drift", "performance", "schedule", "volume"}),
    cooldown=3600,
    every=86_400,
    min_new_rows=1000,
    floors={"roc_auc": 0.75},
)


@pytest.mark.parametrize(
    ("signals", "last", "running", "now", "run", "reasons", "blocked"),
    [
        (RetrainSignals(drift=True), 0.0, False, 10_000.0, True, ("drift",), None),
        (RetrainSignals(metrics={"roc_auc": 0.7}), 0.0, False, 10_000.0, True,
         ("roc_auc 0.7 < 0.75",), None),
        (RetrainSignals(), 0.0, False, 90_000.0, True, ("schedule",), None),
        (RetrainSignals(new_rows=5000), 0.0, False, 10_000.0, True, ("5000 new rows",), None),
        (RetrainSignals(), 0.0, False, 10_000.0, False, (), None),
        (RetrainSignals(drift=True), 9_000.0, False, 10_000.0, False, ("drift",), "cooldown"),
        (RetrainSignals(drift=True), 0.0, True, 10_000.0, False, ("drift",), "in progress"),
    ],
)  # fmt: skip
def test_policy_decisions(
    signals: RetrainSignals,
    last: float | None,
    running: bool,
    now: float,
    run: bool,
    reasons: tuple[str, ...],
    blocked: str | None,
) -> None:
    """Each trigger fires on its own; cooldown and a run in progress hold a run back."""
    decision = should_retrain(POLICY, signals, last, running, now)
    assert decision.run is run and decision.reasons == reasons
    assert (decision.blocked_by is None) if blocked is None else blocked in decision.blocked_by


@dataclass
class _Decision:
    passed: bool


@dataclass
class _Version:
    version: int


@dataclass
class _Result:
    version: _Version
    decision: _Decision


def test_a_run_is_recorded_announced_and_then_cooled_down(project_dir: Path) -> None:
    """Drift starts one run; its gate outcome becomes an info alert; a second waits."""
    calls: list[Any] = []

    def trainer(project: Project) -> _Result:
        calls.append(project)
        return _Result(_Version(7), _Decision(passed=True))

    policy = RetrainPolicy(on=frozenset({"drift"}), cooldown=3600)
    with Project.open(project_dir) as project:
        trigger = RetrainTrigger(project, policy, trainer)
        first = trigger.maybe_run(RetrainSignals(drift=True), now=1000.0)
        second = trigger.maybe_run(RetrainSignals(drift=True), now=2000.0)
        (event,) = AlertBook(project.store).list()
    assert first.run and not second.run and second.blocked_by is not None
    assert len(calls) == 1
    assert event.severity == "info" and "passed the gate" in event.summary
    assert event.details == {"version": 7, "gate_passed": True}


def test_a_failing_training_run_is_an_outcome_not_a_crash(project_dir: Path) -> None:
    """A trainer that raises is recorded as failed and announced."""

    def trainer(project: Project) -> None:
        raise RuntimeError("no validated data")

    with Project.open(project_dir) as project:
        trigger = RetrainTrigger(project, RetrainPolicy(on=frozenset({"drift"})), trainer)
        assert trigger.maybe_run(RetrainSignals(drift=True), now=0.0).run
        (event,) = AlertBook(project.store).list()
    assert "failed" in event.summary and "no validated data" in event.details["error"]
