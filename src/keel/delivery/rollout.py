"""The canary rollout as a pure decision: hold, advance, promote or roll back.

At every check the worker hands in what each arm has done since the current step began;
``decide`` compares the canary with production on the guard metrics and answers. Guards
are judged on evidence, not on raw rates, so a single early error does not roll a good
model back while a model that fails one request in five is caught within a few dozen:

- error and fallback rates (errors: the model raised; fallbacks: every answer the
  fallback chain gave instead, timeouts included): the canary breaches when it has failed
  at least twice and the lower end of a 99% Wilson interval of its rate exceeds both the
  limit and production's rate;
- latency: the canary's p99 above the budget once the step has enough requests;
- predictions: a canary that answers everyone alike (the same score, or the same output
  when there is no score) after ``min_constant`` requests, or whose prediction distribution
  has moved far from production's (PSI) once both arms have ``min_compare`` requests;
- the realised metric, once labels have arrived for both arms.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "ArmStats",
    "CanaryPolicy",
    "Decision",
    "Step",
    "decide",
    "psi",
    "wilson_lower",
]

Action = Literal["hold", "advance", "promote", "rollback"]
_Z = 2.5758293035489  # two-sided 99%


@dataclass(frozen=True)
class CanaryPolicy:
    """The rollout plan and its guards (keel.yaml ``rollout.canary``)."""

    steps: tuple[int, ...] = (1, 5, 25, 50, 100)
    min_requests: int = 200
    min_seconds: float = 600.0
    max_error_rate: float = 0.01
    max_fallback_rate: float = 0.02
    max_latency_p99_ms: float = 50.0
    max_prediction_psi: float = 0.25
    max_metric_drop: float = 0.02
    min_compare: int = 50  # requests per arm before distributions and latency are judged
    min_constant: int = 20  # answers alike before a canary is judged to predict a constant


@dataclass(frozen=True)
class ArmStats:
    """What one arm did during the current step."""

    requests: int = 0
    errors: int = 0
    fallbacks: int = 0
    latency_p99_ms: float | None = None
    predictions: tuple[float, ...] = ()
    metric: float | None = None  # realised, higher is better; None until labels mature
    scores: tuple[float, ...] = ()  # confidences, when the model gives them


@dataclass(frozen=True)
class Step:
    """Where the rollout is: the index into the policy's steps and when it began."""

    index: int
    started_at: float


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    next_share: float
    breaches: tuple[str, ...] = field(default=())


def decide(
    policy: CanaryPolicy, step: Step, canary: ArmStats, production: ArmStats, now: float
) -> Decision:
    """What to do with the canary now."""
    share = policy.steps[step.index] / 100
    breaches = _breaches(policy, canary, production)
    if breaches:
        return Decision("rollback", "; ".join(breaches), 0.0, breaches)
    waiting = _waiting(policy, step, canary, now)
    if waiting:
        return Decision("hold", waiting, share)
    if step.index + 1 >= len(policy.steps):
        return Decision("promote", f"passed every step up to {policy.steps[-1]}%", 1.0)
    nxt = policy.steps[step.index + 1]
    return Decision("advance", f"step {policy.steps[step.index]}% held its guards", nxt / 100)


def _waiting(policy: CanaryPolicy, step: Step, canary: ArmStats, now: float) -> str | None:
    if canary.requests < policy.min_requests:
        return f"{canary.requests}/{policy.min_requests} requests at this step"
    held = now - step.started_at
    if held < policy.min_seconds:
        return f"{held:.0f}/{policy.min_seconds:.0f} s at this step"
    return None


def _breaches(policy: CanaryPolicy, canary: ArmStats, production: ArmStats) -> tuple[str, ...]:
    found = [
        _rate_breach(
            "error rate", canary.errors, canary.requests, production, policy.max_error_rate
        ),
        _rate_breach(
            "fallback rate", canary.fallbacks, canary.requests, production, policy.max_fallback_rate
        ),
        _latency_breach(policy, canary, production),
        _prediction_breach(policy, canary, production),
        _metric_breach(policy, canary, production),
    ]
    return tuple(b for b in found if b)


def _rate_breach(
    name: str, events: int, requests: int, production: ArmStats, limit: float
) -> str | None:
    if events < 2:
        return None  # one failure alone is never evidence enough
    lower = wilson_lower(events, requests)
    field_name = "errors" if name == "error rate" else "fallbacks"
    baseline = getattr(production, field_name) / production.requests if production.requests else 0
    if lower > limit and lower > baseline:
        return f"{name} {events}/{requests} (at least {lower:.1%}) exceeds {limit:.1%}"
    return None


def _latency_breach(policy: CanaryPolicy, canary: ArmStats, production: ArmStats) -> str | None:
    """The canary's p99 above the limit, unless production's over the same step is as
    high: then the machine or the traffic is slow, not the canary, and rolling back would
    not make it faster (as a production error rate raises the bar for the canary's)."""
    p99 = canary.latency_p99_ms
    if p99 is None or canary.requests < policy.min_compare or p99 <= policy.max_latency_p99_ms:
        return None
    baseline = production.latency_p99_ms if production.requests >= policy.min_compare else None
    if baseline is not None and p99 <= baseline:
        return None
    beside = f" (production {baseline:.1f} ms)" if baseline is not None else ""
    return f"latency p99 {p99:.1f} ms exceeds {policy.max_latency_p99_ms:.0f} ms{beside}"


def _prediction_breach(policy: CanaryPolicy, canary: ArmStats, production: ArmStats) -> str | None:
    constant = _constant(policy, canary, production)
    if constant:
        return constant
    ours, theirs = canary.predictions, production.predictions
    if len(ours) < policy.min_compare or len(theirs) < policy.min_compare:
        return None
    shift = psi(theirs, ours)
    if shift > policy.max_prediction_psi:
        return f"prediction distribution moved (PSI {shift:.2f} > {policy.max_prediction_psi:g})"
    return None


def _constant(policy: CanaryPolicy, canary: ArmStats, production: ArmStats) -> str | None:
    """Every answer alike while production's vary: a model that ignores its input."""
    scored = bool(canary.scores) and bool(production.scores)
    ours = canary.scores if scored else canary.predictions
    theirs = production.scores if scored else production.predictions
    if len(ours) < policy.min_constant or len(set(ours)) > 1 or len(set(theirs)) < 2:
        return None
    what = "score" if scored else "prediction"
    return f"the canary predicts a constant: {what} {ours[0]:g} for all {len(ours)} requests"


def _metric_breach(policy: CanaryPolicy, canary: ArmStats, production: ArmStats) -> str | None:
    if canary.metric is None or production.metric is None:
        return None
    drop = production.metric - canary.metric
    if drop > policy.max_metric_drop:
        return f"realised metric {canary.metric:.3f} is {drop:.3f} below production's"
    return None


def wilson_lower(events: int, trials: int) -> float:
    """Lower end of the 99% Wilson score interval of a proportion."""
    if trials == 0:
        return 0.0
    p = events / trials
    denominator = 1 + _Z**2 / trials
    centre = p + _Z**2 / (2 * trials)
    margin = _Z * math.sqrt(p * (1 - p) / trials + _Z**2 / (4 * trials**2))
    return max(0.0, (centre - margin) / denominator)


def psi(reference: tuple[float, ...], current: tuple[float, ...], bins: int = 10) -> float:
    """Population stability index of ``current`` against ``reference`` on its deciles."""
    ordered = sorted(reference)
    edges = sorted({ordered[int(len(ordered) * q / bins)] for q in range(1, bins)})
    ref, cur = _shares(reference, edges), _shares(current, edges)
    return sum((c - r) * math.log(c / r) for r, c in zip(ref, cur, strict=True))


def _shares(values: tuple[float, ...], edges: list[float]) -> list[float]:
    counts = [0] * (len(edges) + 1)
    for value in values:
        counts[bisect.bisect_right(edges, value)] += 1
    total = len(values)
    return [max(count / total, 1e-4) for count in counts]
