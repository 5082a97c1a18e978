"""``keel gate`` and ``keel deploy``: run the gate on a version, record it, promote it.

Thin shells: evidence comes from ``keel.training.evaluate``, the decision from the pure
``keel.training.gate.decide``, the deploy rule from the pure ``deploy_allowed``, and the
registry records everything with who, when and why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keel.errors import DeployRefused
from keel.schema import GateConfig
from keel.training import provenance
from keel.training.artifact import load_bundle
from keel.training.data import load_holdout
from keel.training.evaluate import Production, gather_evidence
from keel.training.gate import GateDecision, decide
from keel.training.registry import Registry
from keel.training.verify import verify_deployable
from keel.training.versions import ModelVersion

if TYPE_CHECKING:
    import pandas as pd

    from keel.project import Project

__all__ = ["deploy", "deploy_allowed", "load_holdout", "run_gate"]


def run_gate(
    project: Project,
    version: int,
    policy: GateConfig | None = None,
    holdout: pd.DataFrame | None = None,
) -> GateDecision:
    """Gate ``version`` under ``policy`` (default: keel.yaml's gate:) and record it."""
    policy = policy if policy is not None else project.config.gate or GateConfig()
    registry = Registry(project.store)
    record = registry.record(version)
    if holdout is None:
        holdout = load_holdout(project, record)
    evidence = gather_evidence(
        policy, project.artifacts, record, holdout, project.root, _production(project, version)
    )
    decision = decide(policy, evidence)
    data = {
        **decision.to_dict(),
        "policy": policy.model_dump(mode="json"),
        "production_version": evidence.production_version,
    }
    registry.record_gate(version, data, decision.passed, provenance.actor())
    return decision


def deploy_allowed(gate_passed: bool | None, force: bool, reason: str | None) -> str | None:
    """Why a deploy must be refused, or None if it may go ahead."""
    if gate_passed:
        return None
    if force and reason and reason.strip():
        return None
    if force:
        return "a forced deploy needs --reason 'why' so the override is on record"
    state = "has not been gated" if gate_passed is None else "failed its gate"
    return f"{state}; run `keel gate` first, or pass --force --reason 'why'"


def deploy(
    project: Project, ref: str, force: bool = False, reason: str | None = None
) -> ModelVersion:
    """Make ``ref`` (a version or ``latest``) the production model, once its artifact has
    been read back intact, loaded and asked to predict (else ``DeployRefused``)."""
    registry = Registry(project.store)
    version = registry.resolve(ref)
    refusal = deploy_allowed(version.gate_passed, force, reason)
    if refusal is not None:
        raise DeployRefused(f"version {version.version} {refusal}")
    verify_deployable(project, version)
    forced = not version.gate_passed
    why = reason or f"gate decision passed; deployed with `keel deploy {ref}`"
    return registry.transition(version.version, "production", provenance.actor(), why, forced)


def _production(project: Project, version: int) -> Production | None:
    current = Registry(project.store).production()
    if current is None or current.version == version:
        return None
    bundle = load_bundle(project.artifacts, current.artifact)
    return Production(current.version, bundle, current.metrics)
