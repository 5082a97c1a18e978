"""The canary decision: hold, advance, promote, or roll back on a breached guard."""

from __future__ import annotations

import random

import pytest

from keel.delivery import ArmStats, CanaryPolicy, Step, decide
from keel.delivery.rollout import psi, wilson_lower

POLICY = CanaryPolicy(steps=(5, 25, 50, 100), min_requests=200, min_seconds=600)


def _uniform(seed: int, n: int = 300) -> tuple[float, ...]:
    rng = random.Random(seed)
    return tuple(rng.random() for _ in range(n))


HEALTHY = ArmStats(requests=1000, predictions=_uniform(1))


def _canary(**fields: object) -> ArmStats:
    base: dict[str, object] = {
        "requests": 250,
        "predictions": _uniform(2),
        "latency_p99_ms": 8.0,
    }
    return ArmStats(**(base | fields))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("canary", "seconds", "action", "reason"),
    [
        (_canary(requests=20), 9999, "hold", "20/200 requests"),
        (_canary(), 100, "hold", "100/600 s"),
        (_canary(), 700, "advance", "step 5% held"),
    ],
)
def test_first_step(canary: ArmStats, seconds: float, action: str, reason: str) -> None:
    """A healthy canary waits for requests and time, then advances."""
    decision = decide(POLICY, Step(0, 0.0), canary, HEALTHY, now=seconds)
    assert decision.action == action
    assert reason in decision.reason


def test_advance_names_the_next_share() -> None:
    """Advancing from 25% goes to 50%."""
    assert decide(POLICY, Step(1, 0.0), _canary(), HEALTHY, now=700).next_share == 0.5


def test_last_step_promotes() -> None:
    """Holding the guards at 100% promotes the canary."""
    decision = decide(POLICY, Step(3, 0.0), _canary(), HEALTHY, now=700)
    assert (decision.action, decision.next_share) == ("promote", 1.0)


@pytest.mark.parametrize(
    ("canary", "breach"),
    [
        (_canary(errors=20), "error rate"),
        (_canary(fallbacks=30), "fallback rate"),
        (_canary(latency_p99_ms=120.0), "latency p99"),
        (_canary(predictions=(0.5,) * 300), "predicts a constant: prediction 0.5"),
        (_canary(predictions=tuple(0.9 + x / 10 for x in HEALTHY.predictions)), "PSI"),
        (_canary(metric=0.70), "realised metric"),
    ],
)
def test_a_breached_guard_rolls_back(canary: ArmStats, breach: str) -> None:
    """Any guard breach rolls back at once, whatever the step's progress."""
    production = ArmStats(**(HEALTHY.__dict__ | {"metric": 0.80}))
    decision = decide(POLICY, Step(0, 0.0), canary, production, now=1)
    assert decision.action == "rollback"
    assert breach in decision.reason
    assert decision.next_share == 0.0


def test_one_early_error_does_not_roll_back() -> None:
    """One error in the first ten requests is not evidence of a bad model."""
    decision = decide(POLICY, Step(0, 0.0), _canary(requests=10, errors=1), HEALTHY, now=1)
    assert decision.action == "hold"


def test_a_model_failing_one_in_five_is_caught_within_a_few_dozen_requests() -> None:
    """Replaying a canary that raises on 20% of inputs: rolled back within 40 requests."""
    rng = random.Random(7)
    errors = 0
    for served in range(1, 201):
        errors += rng.random() < 0.2
        stats = _canary(requests=served, errors=errors, predictions=())
        if decide(POLICY, Step(0, 0.0), stats, HEALTHY, now=1).action == "rollback":
            break
    assert served <= 40


def test_production_errors_raise_the_bar() -> None:
    """A canary no worse than a struggling production is not blamed for it."""
    production = ArmStats(requests=1000, errors=100)
    decision = decide(POLICY, Step(0, 0.0), _canary(errors=25), production, now=1)
    assert decision.action != "rollback"


@pytest.mark.parametrize(
    ("production_p99", "action", "said"),
    [
        (150.0, "advance", "held its guards"),  # as slow: the machine, not the canary
        (120.0, "advance", "held its guards"),
        (119.0, "rollback", "latency p99 120.0 ms exceeds 50 ms (production 119.0 ms)"),
        (20.0, "rollback", "latency p99 120.0 ms exceeds 50 ms (production 20.0 ms)"),
        (None, "rollback", "latency p99 120.0 ms exceeds 50 ms"),
    ],
)
def test_production_latency_raises_the_bar(
    production_p99: float | None, action: str, said: str
) -> None:
    """A canary above the latency limit is rolled back only if it is also slower than
    production over the same step (or production has no latency to compare with)."""
    production = ArmStats(**(HEALTHY.__dict__ | {"latency_p99_ms": production_p99}))
    decision = decide(POLICY, Step(0, 0.0), _canary(latency_p99_ms=120.0), production, now=700)
    assert (decision.action, said in decision.reason) == (action, True), decision.reason


@pytest.mark.parametrize(
    ("events", "trials", "low", "high"), [(0, 10, 0, 0), (1, 10, 0.0, 0.02), (50, 100, 0.36, 0.40)]
)
def test_wilson_lower_bound(events: int, trials: int, low: float, high: float) -> None:
    """The 99% Wilson lower bound on known cases."""
    assert low <= wilson_lower(events, trials) <= high


def test_psi_is_zero_for_the_same_sample_and_large_for_a_shift() -> None:
    """PSI measures how far a distribution moved."""
    rng = random.Random(3)
    sample = tuple(rng.gauss(0, 1) for _ in range(2000))
    assert psi(sample, sample) < 1e-9
    assert psi(sample, tuple(x + 1 for x in sample)) > 0.5
