"""Keel's pipeline as Prefect tasks and flows (``pip install 'keel-ml[prefect]'``).

Each task calls Keel's Python API on a project folder (never the ``keel`` command) and
returns plain, JSON-safe data, so a flow passes results from one step to the next and
Prefect records them. Steps that meet a passing outage (the metadata or object store
unreachable, another deploy holding the lease) are retried by Prefect; a user error is
not retried, and its one sentence is the task's and the flow's failure message.

- ``ingest_and_validate(project, source=None)``: ingest (every check runs; a refused batch
  is quarantined and fails the task with the run's reason); the runs as dicts.
- ``train_and_gate(project)``: train, register and gate a candidate; a failing gate fails
  the task with the checks that failed (the version stays registered as a candidate).
- ``deploy_version(project, version, kind="shadow", reason=None)``: shadow, canary or
  production, as ``keel deploy`` (a version that did not pass its gate is refused).
- ``monitoring_cycle(project)``: one ``keel worker --once`` cycle (roll the log, drift,
  alerts, retrain trigger, then the shadow and canary step).

Two flows chain them: ``keel_pipeline`` (ingest and validate -> train and gate -> deploy,
to shadow by default) and ``keel_monitoring`` (one monitoring cycle, for a schedule).
The plain functions (``ingest_step`` ...) are the same steps without Prefect. Without
Prefect installed, calling a task or flow raises ``MissingExtraError`` naming the extra.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from keel.errors import (
    ArtifactStoreUnavailable,
    DataError,
    DeployRefused,
    LeaseHeld,
    MissingExtraError,
    OnlineStoreUnavailable,
    StoreUnavailable,
)

try:
    import prefect
except ImportError:  # the module still imports; its tasks and flows say what to install
    prefect = None

if TYPE_CHECKING:
    from keel.training.gate import Check, GateDecision

__all__ = [
    "deploy_step",
    "deploy_version",
    "gate_refusal",
    "ingest_and_validate",
    "ingest_step",
    "keel_monitoring",
    "keel_pipeline",
    "monitoring_cycle",
    "monitoring_step",
    "train_and_gate",
    "train_step",
]

Kind = Literal["shadow", "canary", "production"]
_TRANSIENT = (StoreUnavailable, ArtifactStoreUnavailable, OnlineStoreUnavailable, LeaseHeld)


def ingest_step(project: str | Path, source: str | None = None) -> list[dict[str, Any]]:
    """Ingest and validate ``source`` (every source when None); the runs, as dicts."""
    from keel.data.ingestion import ingest
    from keel.project import Project

    with Project.open(project) as opened:
        runs = ingest(opened, source)
    for run in runs:
        _log().info("ingest %s: %s (%s)", run.source, run.status, run.message)
    refused = [run for run in runs if not run.ok]
    if refused:
        raise DataError("; ".join(f"source {run.source}: {run.message}" for run in refused))
    return [run.to_dict() for run in runs]


def train_step(project: str | Path) -> dict[str, Any]:
    """Train, register and gate a candidate; fails with the failed checks if the gate does."""
    from keel.project import Project
    from keel.training.pipeline import train

    with Project.open(project) as opened:
        result = train(opened)
    version, decision = result.version, result.decision
    gate = None if decision is None else decision.to_dict()
    _log().info("trained %s on %s rows: %s", version.label, version.data_rows, version.metrics)
    if decision is not None and not decision.passed:
        raise DeployRefused(gate_refusal(version.version, decision))
    return {"version": version.version, "model": version.to_dict(), "gate": gate}


def gate_refusal(version: int, decision: GateDecision) -> str:
    """The sentence a failing gate ends a flow with: which checks failed, and what stays."""
    failed = "; ".join(f"{check.name}: {_statement(check)}" for check in decision.failures)
    return (
        f"version {version} failed its gate ({failed}); it stays registered as a candidate "
        "and nothing was deployed"
    )


def _statement(check: Check) -> str:
    """A check as ``keel train`` prints it: its own statement, or value and threshold."""
    if check.statement:
        return check.statement
    value = "n/a" if check.value is None else f"{check.value:g}"
    return f"{value} {check.threshold}"


def deploy_step(
    project: str | Path, version: int | str, kind: Kind = "shadow", reason: str | None = None
) -> dict[str, Any]:
    """Deploy a gated ``version`` as ``kind``; the deployed version, as a dict."""
    from keel.delivery.staging import stage
    from keel.project import Project
    from keel.training.gating import deploy

    why = reason or f"gate decision passed; deployed as {kind} by a Prefect flow"
    with Project.open(project) as opened:
        if kind == "production":
            deployed = deploy(opened, str(version), reason=why)
        else:
            deployed = stage(opened, str(version), kind, reason=why)
    _log().info("version %s is now the %s model", deployed.version, kind)
    return deployed.to_dict()


def monitoring_step(project: str | Path) -> dict[str, Any]:
    """One monitoring cycle, then the delivery step, as ``keel worker --once`` runs them."""
    from keel.delivery.advance import advance_delivery
    from keel.monitoring.cycle import run_cycle
    from keel.project import Project

    with Project.open(project) as opened:
        cycle = run_cycle(opened).to_dict()
        delivery = advance_delivery(opened)
    _log().info("drift: %s; alerts: %s", cycle["drift"]["decision"], cycle["alerts"] or "none")
    return {"monitoring": cycle, "delivery": delivery}


def _transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's retry condition: retry an outage, never a user error or a bug."""
    try:
        state.result()
    except _TRANSIENT:
        return True
    except Exception:
        return False
    return False


def _log() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The run's logger inside Prefect (its lines land in the run's log), else Keel's."""
    if prefect is not None:
        from prefect.exceptions import MissingContextError

        try:
            return prefect.get_run_logger()  # type: ignore[no-any-return]
        except MissingContextError:
            pass
    return logging.getLogger("keel.integrations.prefect")


def _pipeline(
    project: str,
    source: str | None = None,
    deploy_as: Kind = "shadow",
    reason: str | None = None,
) -> dict[str, Any]:
    """Ingest and validate, train and gate, deploy the candidate (to shadow by default)."""
    runs = ingest_and_validate(project, source)
    trained = train_and_gate(project)
    deployed = deploy_version(project, trained["version"], deploy_as, reason)
    return {"ingest": runs, "train": trained, "deploy": deployed}


def _monitoring(project: str) -> dict[str, Any]:
    """One monitoring and delivery cycle."""
    return monitoring_cycle(project)  # type: ignore[no-any-return]


def _needs_prefect(*args: Any, **kwargs: Any) -> Any:
    raise MissingExtraError("prefect", "prefect")


if prefect is None:
    ingest_and_validate = train_and_gate = deploy_version = monitoring_cycle = _needs_prefect
    keel_pipeline = keel_monitoring = _needs_prefect
else:
    _RETRIES: dict[str, Any] = {
        "retries": 2,
        "retry_delay_seconds": 30,
        "retry_condition_fn": _transient,
    }
    ingest_and_validate = prefect.task(ingest_step, name="keel-ingest-and-validate", **_RETRIES)
    train_and_gate = prefect.task(train_step, name="keel-train-and-gate")  # same data, verdict
    deploy_version = prefect.task(deploy_step, name="keel-deploy", **_RETRIES)
    monitoring_cycle = prefect.task(monitoring_step, name="keel-monitoring-cycle", **_RETRIES)
    keel_pipeline = prefect.flow(_pipeline, name="keel-pipeline")
    keel_monitoring = prefect.flow(_monitoring, name="keel-monitoring")
