"""The worker's rollout step: read both arms from the prediction log, decide, apply.

``advance_rollout`` is the thin shell around the pure ``keel.delivery.decide``: it reads
what the canary and production did since the current step began (requests, fallbacks,
latency p99, predictions), asks for a decision and applies it: a bigger share, promotion
to production, or a rollback (canary -> archived, with a critical alert). Its state lives
in ``keel_rollouts``, so a worker killed mid-rollout resumes where it was.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from keel.delivery.rollout import ArmStats, CanaryPolicy, Decision, Step, decide
from keel.delivery.staging import Rollout, staged
from keel.delivery.tables import rollouts
from keel.schema import RolloutConfig

if TYPE_CHECKING:
    import pandas as pd

    from keel.project import Project

__all__ = ["advance_rollout", "arm_stats", "canary_policy"]

_ACTOR = "keel-worker"


def canary_policy(config: RolloutConfig | None) -> CanaryPolicy:
    """keel.yaml ``rollout.canary`` as the decision's policy (defaults when absent)."""
    spec = (config or RolloutConfig()).canary
    return CanaryPolicy(
        steps=tuple(spec.steps),
        min_requests=spec.hold.min_requests,
        min_seconds=spec.hold.min_time.total_seconds(),
        max_error_rate=spec.guards.max_error_rate,
        max_fallback_rate=spec.guards.max_fallback_rate,
        max_latency_p99_ms=spec.guards.max_latency_p99_ms,
    )


def arm_stats(records: Sequence[dict[str, Any]]) -> ArmStats:
    """What one arm did, from its prediction-log rows (a fallback is a failed model call)."""
    failed = sum(1 for row in records if _marked(row.get("fallback")))
    latencies = sorted(float(row["latency_ms"]) for row in records if _number(row, "latency_ms"))
    p99 = (
        latencies[min(len(latencies) - 1, math.ceil(0.99 * len(latencies)) - 1)]
        if latencies
        else None
    )
    predictions = tuple(float(row["output"]) for row in records if _number(row, "output"))
    return ArmStats(len(records), failed, failed, p99, predictions)


def advance_rollout(project: Project, now: float) -> dict[str, Any] | None:
    """Check the running canary (if any) and apply the decision; what happened, or None."""
    canary = next((found for found in staged(project) if found.kind == "canary"), None)
    if canary is None:
        return None
    policy = canary_policy(project.config.rollout)
    index = min(canary.step_index, len(policy.steps) - 1)
    frame = _since(project, canary.step_started_at)
    arms = {arm: arm_stats(_rows(frame, arm)) for arm in ("canary", "production")}
    step = Step(index, canary.step_started_at)
    decision = decide(policy, step, arms["canary"], arms["production"], now)
    _apply(project, canary, decision, index, now)
    return {
        "version": canary.version,
        "action": decision.action,
        "reason": decision.reason,
        "share": decision.next_share * 100,
        "requests": {arm: stats.requests for arm, stats in arms.items()},
    }


def _apply(project: Project, canary: Rollout, decision: Decision, index: int, now: float) -> None:
    from keel.training.registry import Registry

    registry = Registry(project.store)
    if decision.action == "hold":
        return
    if decision.action == "advance":
        _update(project, canary.version, share=decision.next_share * 100, step_index=index + 1)
        return
    if decision.action == "promote":
        registry.transition(canary.version, "production", _ACTOR, f"canary: {decision.reason}")
        _update(project, canary.version, state="promoted")
        return
    registry.transition(
        canary.version, "archived", _ACTOR, f"canary rolled back: {decision.reason}"
    )
    _update(project, canary.version, state="rolled_back")
    _alert(project, canary.version, decision, now)


def _update(project: Project, version: int, **values: Any) -> None:
    import time

    now = time.time()
    values = {"updated_at": now, **values}
    if "step_index" in values:
        values["step_started_at"] = now
    with project.store.begin() as connection:
        connection.execute(rollouts.update().where(rollouts.c.version == version).values(**values))


def _alert(project: Project, version: int, decision: Decision, now: float) -> None:
    from keel.monitoring.alerts import AlertBook, sinks_from_config

    routes, _ = sinks_from_config(project.config.alerts)
    summary = f"canary version {version} was rolled back: {decision.reason}"
    details = {"version": version, "breaches": list(decision.breaches)}
    AlertBook(project.store, routes).event(
        "canary_rolled_back", f"model@{version}", "critical", summary, details, now
    )


def _since(project: Project, started_at: float) -> pd.DataFrame:
    from keel.monitoring.log import PredictionLog

    log = PredictionLog.for_project(project)
    try:
        log.flush()
        return log.read(start=datetime.fromtimestamp(started_at, UTC))
    finally:
        log.close(flush=False)


def _rows(frame: pd.DataFrame, arm: str) -> list[dict[str, Any]]:
    if frame.empty or "route" not in frame:
        return []
    records: list[dict[str, Any]] = frame[frame["route"] == arm].to_dict("records")
    return records


def _marked(value: Any) -> bool:
    """A fallback marker is a non-empty string (a missing one reads back as None or NaN)."""
    return isinstance(value, str) and bool(value)


def _number(row: dict[str, Any], name: str) -> bool:
    value = row.get(name)
    if isinstance(value, bool):
        return True
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
