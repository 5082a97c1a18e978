"""The retrain trigger: a pure policy, and the thin shell that runs training under it.

``should_retrain`` decides from signals alone: drift, a metric below its floor, a
schedule, or enough new rows — never inside the cooldown after the last run, never
while a run is in progress. ``RetrainTrigger`` asks it, holds a lease so at most one run
happens at a time across processes, calls the training pipeline (which registers the
candidate and sends it to the evaluation gate), records the outcome and raises it as an
info alert.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from keel.errors import LeaseHeld
from keel.monitoring.alerts.book import AlertBook
from keel.monitoring.tables import retrain_runs

if TYPE_CHECKING:
    from keel.project import Project
    from keel.schema import RetrainSpec
    from keel.store.metadata import MetadataStore

__all__ = [
    "RetrainDecision",
    "RetrainPolicy",
    "RetrainSignals",
    "RetrainTrigger",
    "last_passed_retrain",
    "should_retrain",
]


@dataclass(frozen=True)
class RetrainPolicy:
    """When to retrain: ``on`` any of drift, performance, schedule, volume."""

    on: frozenset[str] = frozenset()
    cooldown: float = 86_400.0
    every: float | None = None
    min_new_rows: int | None = None
    floors: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_config(cls, spec: RetrainSpec) -> RetrainPolicy:
        return cls(
            on=frozenset(spec.on),
            cooldown=spec.cooldown.total_seconds(),
            every=spec.every.total_seconds() if spec.every else None,
            min_new_rows=spec.min_new_rows,
            floors=dict(spec.floors),
        )


@dataclass(frozen=True)
class RetrainSignals:
    """What monitoring knows now."""

    drift: bool = False
    metrics: Mapping[str, float] = field(default_factory=dict)
    new_rows: int = 0


@dataclass(frozen=True)
class RetrainDecision:
    run: bool
    reasons: tuple[str, ...] = ()
    blocked_by: str | None = None


def should_retrain(
    policy: RetrainPolicy,
    signals: RetrainSignals,
    last_run_at: float | None,
    running: bool,
    now: float,
) -> RetrainDecision:
    """Whether to start a run now, why, and what (if anything) holds it back."""
    reasons = _reasons(policy, signals, last_run_at, now)
    if not reasons:
        return RetrainDecision(False)
    if running:
        return RetrainDecision(False, reasons, "a retrain run is in progress")
    if last_run_at is not None and now - last_run_at < policy.cooldown:
        return RetrainDecision(False, reasons, "cooldown since the last run")
    return RetrainDecision(True, reasons)


def _reasons(
    policy: RetrainPolicy, signals: RetrainSignals, last_run_at: float | None, now: float
) -> tuple[str, ...]:
    reasons = []
    if "drift" in policy.on and signals.drift:
        reasons.append("drift")
    if "performance" in policy.on:
        reasons += [
            f"{name} {signals.metrics[name]:.4g} < {floor:g}"
            for name, floor in policy.floors.items()
            if name in signals.metrics and signals.metrics[name] < floor
        ]
    due = policy.every is not None and (last_run_at is None or now - last_run_at >= policy.every)
    if "schedule" in policy.on and due:
        reasons.append("schedule")
    enough = policy.min_new_rows is not None and signals.new_rows >= policy.min_new_rows
    if "volume" in policy.on and enough:
        reasons.append(f"{signals.new_rows} new rows")
    return tuple(reasons)


Trainer = Callable[["Project"], Any]
"""Runs training and gating; returns an object with ``version`` and ``decision``."""


class RetrainTrigger:
    """Runs the training pipeline when the policy says so, one run at a time."""

    def __init__(self, project: Project, policy: RetrainPolicy, trainer: Trainer | None = None):
        self.project, self.policy = project, policy
        self.trainer = trainer or _train

    def maybe_run(self, signals: RetrainSignals, now: float | None = None) -> RetrainDecision:
        now = time.time() if now is None else now
        decision = should_retrain(self.policy, signals, self._last_start(), False, now)
        if not decision.run:
            return decision
        try:
            with self.project.store.leases.hold(f"keel:retrain:{self.project.config.name}", 60):
                self._run(decision.reasons, now)
        except LeaseHeld:
            return RetrainDecision(False, decision.reasons, "a retrain run is in progress")
        return decision

    def _run(self, reasons: tuple[str, ...], now: float) -> None:
        run_id = uuid.uuid4().hex
        with self.project.store.begin() as conn:
            conn.execute(retrain_runs.insert().values(
                id=run_id, started_at=now, reasons=", ".join(reasons), outcome="running"
            ))  # fmt: skip
        outcome, details = _outcome(self.trainer, self.project)
        with self.project.store.begin() as conn:
            conn.execute(
                retrain_runs.update()
                .where(retrain_runs.c.id == run_id)
                .values(
                    finished_at=time.time(), outcome=outcome, details=orjson.dumps(details).decode()
                )
            )
        self._announce(outcome, reasons, details, now)

    def _announce(
        self, outcome: str, reasons: tuple[str, ...], details: dict[str, Any], now: float
    ) -> None:
        from keel.monitoring.alerts.setup import sinks_from_config

        routes, _ = sinks_from_config(self.project.config.alerts)
        summary = f"retrain ({', '.join(reasons)}): {outcome}"
        AlertBook(self.project.store, routes).event(
            "retrain", "model", "info", summary, details, now
        )

    def _last_start(self) -> float | None:
        with self.project.store.begin() as conn:
            return conn.execute(sa.select(sa.func.max(retrain_runs.c.started_at))).scalar()


def last_passed_retrain(store: MetadataStore) -> int | None:
    """The version the newest retrain run trained, if that run's candidate passed its gate
    (the newest run that passed, whatever ran after it); None if none did."""
    query = (
        sa.select(retrain_runs.c.details)
        .where(retrain_runs.c.outcome == "passed the gate")
        .order_by(retrain_runs.c.started_at.desc())
        .limit(1)
    )
    with store.engine.connect() as connection:
        details = connection.execute(query).scalar()
    version = orjson.loads(details).get("version") if details else None
    return version if isinstance(version, int) else None


def _outcome(trainer: Trainer, project: Project) -> tuple[str, dict[str, Any]]:
    try:
        result = trainer(project)
    except Exception as error:  # a failed run is an outcome to record, not a crash
        return "failed", {"error": f"{type(error).__name__}: {error}"}
    version = getattr(getattr(result, "version", None), "version", None)
    decision = getattr(result, "decision", None)
    passed = None if decision is None else bool(decision.passed)
    outcome = "trained" if passed is None else ("passed the gate" if passed else "failed the gate")
    return outcome, {"version": version, "gate_passed": passed}


def _train(project: Project) -> Any:
    from keel.training import train

    return train(project)
