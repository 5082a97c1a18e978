"""The worker's delivery step: judge the shadow, judge the canary, stage a new candidate.

``advance_delivery`` runs once per worker cycle and is the closed loop's hands:

- the **shadow**: its report (``keel.delivery.compare``) over the requests since it was
  staged; ready -> it becomes the canary at the first step (an info alert); enough
  requests and still short -> it is rejected (archived, with a warning alert);
- the **canary**: what it and production did since the current step began, judged by the
  pure ``keel.delivery.decide``: hold, a bigger share, promotion to production (an info
  alert), or a rollback (archived, with a critical alert);
- a **candidate**: with ``rollout.auto`` (the default once keel.yaml has ``rollout:``), the
  version the retrain trigger produced, if it passed its gate, goes to shadow.

Every decision reads and writes the metadata store only (``keel_rollouts`` and the
registry), so a worker killed at any point resumes from the recorded state: the step runs
under a lease (one worker at a time, however many run), each registry move names the
status it expects (a person's change since the worker looked wins), and a step cut short
between the registry move and its record or alert is finished by the next one
(``_finish_interrupted``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from keel.delivery.evidence import arm_rows, arm_stats, labels_for, read_since, shadow_pairs
from keel.delivery.rollout import CanaryPolicy, Decision, Step, decide
from keel.delivery.shadow import ShadowCriteria, ShadowReport, compare
from keel.delivery.staging import Rollout, record, rollout, stage, staged
from keel.delivery.tables import rollouts
from keel.errors import DeployRefused, LeaseHeld, RegistryError
from keel.schema import RolloutConfig

if TYPE_CHECKING:
    from keel.project import Project

__all__ = [
    "ACTOR",
    "advance_delivery",
    "advance_rollout",
    "advance_shadow",
    "canary_policy",
    "shadow_criteria",
    "shadow_report",
    "stage_candidate",
]

ACTOR = "keel-worker"
_LEASE = "keel:delivery:advance"
_LOAD_GRACE_S = 10.0  # replicas poll, load and warm a new shadow well within this


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


def shadow_criteria(config: RolloutConfig | None) -> ShadowCriteria:
    """keel.yaml ``rollout.shadow`` as the promotion criteria (defaults when absent)."""
    spec = (config or RolloutConfig()).shadow
    return ShadowCriteria(spec.min_requests, spec.min_agreement, spec.max_error_rate)


def advance_delivery(project: Project, now: float | None = None) -> dict[str, Any]:
    """One delivery step: what happened to the shadow, the canary and a new candidate."""
    now = time.time() if now is None else now
    try:
        with project.store.leases.hold(_LEASE, ttl=15):
            return _advance(project, now)
    except LeaseHeld:
        return {"skipped": "another worker is taking the delivery step"}


def _advance(project: Project, now: float) -> dict[str, Any]:
    done: dict[str, Any] = {}
    finished = _finish_interrupted(project)
    if finished:
        done["finished"] = finished
    shadow = advance_shadow(project)
    if shadow is not None:
        done["shadow"] = shadow
    canary = advance_rollout(project, now)
    if canary is not None:
        done["canary"] = canary
    candidate = stage_candidate(project)
    if candidate is not None:
        done["candidate"] = candidate
    return done


# -- shadow ---------------------------------------------------------------------------


def shadow_report(project: Project, found: Rollout | None = None) -> ShadowReport | None:
    """How the running shadow answered the requests since it was staged (None: no shadow)."""
    found = found or _running(project, "shadow")
    return None if found is None else _report(project, found)


def _report(project: Project, found: Rollout) -> ShadowReport:
    frame = read_since(project, found.step_started_at)
    loaded_by = found.step_started_at + _LOAD_GRACE_S
    pairs = shadow_pairs(frame, labels_for(project, frame), loaded_by)
    return compare(pairs, _kind(project), shadow_criteria(project.config.rollout))


def advance_shadow(project: Project) -> dict[str, Any] | None:
    """Promote a ready shadow to canary, reject one that fell short, or wait."""
    found = _running(project, "shadow")
    if found is None:
        return None
    report = _report(project, found)
    summary = {"version": found.version, **report.to_dict()}
    if report.ready:
        return {**summary, "action": _shadow_to_canary(project, found.version, report)}
    if report.rejected:
        _reject(project, found.version, report)
        return {**summary, "action": "rejected"}
    return {**summary, "action": "hold"}


def _shadow_to_canary(project: Project, version: int, report: ShadowReport) -> str:
    if _running(project, "canary") is not None:
        return "waiting: a canary is already rolling out"
    figure = f"agreement {report.agreement:.1%}" if report.agreement is not None else "parity"
    reason = f"shadow passed ({figure} over {report.requests} requests)"
    try:
        stage(project, str(version), "canary", reason=reason, actor=ACTOR, expected="shadow")
    except DeployRefused as refused:
        return f"waiting: {refused}"  # a forced shadow goes on only by a person's hand
    except (LeaseHeld, RegistryError) as error:
        return f"waiting: {error}"
    summary = f"shadow version {version} went on to canary: {reason}"
    _alert(project, "shadow_promoted", version, "info", summary, {"version": version})
    return "canary"


def _reject(project: Project, version: int, report: ShadowReport) -> None:
    from keel.training.registry import Registry

    why = f"shadow rejected: {report.reason}"
    Registry(project.store).transition(version, "archived", ACTOR, why, expected="shadow")
    _rejected(project, version, report.reason, {"report": report.to_dict()})


def _rejected(project: Project, version: int, reason: str, details: dict[str, Any]) -> None:
    summary = f"shadow version {version} was rejected: {reason}"
    _alert(project, "shadow_rejected", version, "warning", summary, {"version": version, **details})
    _update(project, version, state="rejected")


# -- canary ---------------------------------------------------------------------------


def advance_rollout(project: Project, now: float) -> dict[str, Any] | None:
    """Check the running canary (if any) and apply the decision; what happened, or None."""
    canary = _running(project, "canary")
    if canary is None:
        return None
    policy = canary_policy(project.config.rollout)
    index = min(canary.step_index, len(policy.steps) - 1)
    frame = read_since(project, canary.step_started_at)
    labels, kind = labels_for(project, frame), _kind(project)
    arms = {arm: arm_stats(arm_rows(frame, arm), labels, kind) for arm in ("canary", "production")}
    decision = decide(
        policy, Step(index, canary.step_started_at), arms["canary"], arms["production"], now
    )
    _apply(project, canary, decision, index)
    return {
        "version": canary.version,
        "action": decision.action,
        "reason": decision.reason,
        "share": decision.next_share * 100,
        "requests": {arm: stats.requests for arm, stats in arms.items()},
    }


def _apply(project: Project, canary: Rollout, decision: Decision, index: int) -> None:
    from keel.training.registry import Registry

    registry = Registry(project.store)
    if decision.action == "hold":
        return
    if decision.action == "advance":
        share = decision.next_share * 100
        _update(project, canary.version, share=share, step_index=index + 1)
        return
    if decision.action == "promote":
        why = f"canary: {decision.reason}"
        registry.transition(canary.version, "production", ACTOR, why, expected="canary")
        _update(project, canary.version, state="promoted")
        summary = f"canary version {canary.version} is the production model: {decision.reason}"
        details = {"version": canary.version}
        _alert(project, "canary_promoted", canary.version, "info", summary, details)
        return
    why = f"canary rolled back: {decision.reason}"
    registry.transition(canary.version, "archived", ACTOR, why, expected="canary")
    _rolled_back(project, canary.version, decision.reason, list(decision.breaches))


def _rolled_back(project: Project, version: int, reason: str, breaches: list[str]) -> None:
    summary = f"canary version {version} was rolled back: {reason}"
    details = {"version": version, "breaches": breaches}
    _alert(project, "canary_rolled_back", version, "critical", summary, details)
    _update(project, version, state="rolled_back")


# -- a step cut short -------------------------------------------------------------------


def _finish_interrupted(project: Project) -> list[dict[str, Any]]:
    """Finish what a killed worker left half done: a rollout still ``running`` whose
    version the worker already moved (its record and alert were never written)."""
    from keel.training import Registry

    query = sa.select(rollouts.c.version, rollouts.c.kind).where(rollouts.c.state == "running")
    with project.store.engine.connect() as connection:
        running = connection.execute(query).all()
    registry = Registry(project.store)
    stale = [(version, kind, registry.get(version).status) for version, kind in running]
    return [_finish(project, registry, *row) for row in stale if row[2] != row[1]]


def _finish(
    project: Project, registry: Any, version: int, kind: str, status: str
) -> dict[str, Any]:
    last = registry.history(version)[-1]  # oldest first
    ours = last.actor == ACTOR
    reason = last.reason.split(": ", 1)[-1]
    if ours and kind == "canary" and status == "archived":
        _rolled_back(project, version, reason, [])
        return {"version": version, "action": "rolled_back"}
    if ours and kind == "shadow" and status == "archived":
        _rejected(project, version, reason, {})
        return {"version": version, "action": "rejected"}
    if ours and kind == "shadow" and status == "canary":
        record(project, version, "canary", float(canary_policy(project.config.rollout).steps[0]))
        return {"version": version, "action": "canary"}
    state = "promoted" if status == "production" else "ended"  # or a person took over
    _update(project, version, state=state)
    return {"version": version, "action": state}


# -- a new candidate ------------------------------------------------------------------


def stage_candidate(project: Project) -> dict[str, Any] | None:
    """With ``rollout.auto``, send the retrain trigger's gated candidate to shadow."""
    config = project.config.rollout
    if config is None or not config.auto or staged(project):
        return None
    version = _retrained_candidate(project)
    if version is None:
        return None
    reason = "retrained by the worker and passed the gate; shadowing production"
    try:
        stage(project, str(version), "shadow", reason=reason, actor=ACTOR, expected="candidate")
    except (DeployRefused, LeaseHeld, RegistryError) as error:
        return {"version": version, "action": f"waiting: {error}"}
    return {"version": version, "action": "shadow"}


def _retrained_candidate(project: Project) -> int | None:
    """The newest retrain run's version, if it passed its gate and was never staged."""
    from keel.monitoring import last_passed_retrain
    from keel.training import Registry

    version = last_passed_retrain(project.store)
    if version is None or rollout(project, version) is not None:
        return None
    found = Registry(project.store).get(version)
    return version if found.status == "candidate" and found.gate_passed else None


# -- shared ---------------------------------------------------------------------------


def _running(project: Project, kind: str) -> Rollout | None:
    return next((found for found in staged(project) if found.kind == kind), None)


def _kind(project: Project) -> Any:
    config = project.config.monitoring
    return config.performance.kind if config is not None else "classification"


def _update(project: Project, version: int, **values: Any) -> None:
    """Change the rollout record; a new step starts now by the clock the log is read by."""
    now = time.time()
    values = {"updated_at": now, **values}
    if "step_index" in values:
        values["step_started_at"] = now
    with project.store.begin() as connection:
        connection.execute(rollouts.update().where(rollouts.c.version == version).values(**values))


def _alert(
    project: Project,
    rule: str,
    version: int,
    severity: str,
    summary: str,
    details: dict[str, Any],
) -> None:
    from keel.monitoring.alerts import AlertBook, sinks_from_config

    routes, _ = sinks_from_config(project.config.alerts)
    AlertBook(project.store, routes).event(
        rule, f"model@{version}", severity, summary, details, time.time()
    )
