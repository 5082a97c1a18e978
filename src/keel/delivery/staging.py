"""``keel deploy V --shadow`` and ``keel deploy V --canary``: stage a gated version.

A staged version runs beside production: a shadow sees every request off the response
path, a canary answers a sticky share of them. Only a version with a passing gate
decision may be staged (or a forced one, on record), one shadow and one canary at a
time. The change runs under a lease, so of two deploys at once one wins and the other
gets a clear error. The canary's share and step are stored in ``keel_rollouts``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa

from keel.delivery.tables import rollouts
from keel.errors import DeployRefused, LeaseHeld
from keel.project import Project
from keel.training import provenance
from keel.training.gating import deploy_allowed
from keel.training.registry import Registry
from keel.training.verify import verify_deployable
from keel.training.versions import ModelVersion

__all__ = [
    "Rollout",
    "StageKind",
    "default_share",
    "record",
    "rollout",
    "stage",
    "staged",
    "staging_refusal",
]

StageKind = Literal["shadow", "canary"]
_LEASE = "keel:delivery:deploy"


@dataclass(frozen=True)
class Rollout:
    """The stored state of one staged version."""

    version: int
    kind: str
    share: float
    step_index: int
    step_started_at: float
    state: str
    updated_at: float


def staging_refusal(
    version: ModelVersion, kind: StageKind, occupant: int | None, force: bool, reason: str | None
) -> str | None:
    """Why staging ``version`` as ``kind`` must be refused, or None if it may go ahead."""
    if version.status == "production":
        return f"version {version.version} is already the production model"
    if occupant is not None and occupant != version.version:
        return (
            f"version {occupant} is already the {kind}; it must be promoted or rolled back "
            f"before another {kind} is deployed"
        )
    refusal = deploy_allowed(version.gate_passed, force, reason)
    return None if refusal is None else f"version {version.version} {refusal}"


def default_share(project: Project) -> float:
    """The first configured canary step (keel.yaml ``rollout.canary.steps``), else 5 %."""
    config = project.config.rollout
    return float(config.canary.steps[0]) if config is not None else 5.0


def stage(
    project: Project,
    ref: str,
    kind: StageKind,
    share: float | None = None,
    force: bool = False,
    reason: str | None = None,
    actor: str | None = None,
    expected: str | None = None,
) -> ModelVersion:
    """Deploy ``ref`` as the shadow or the canary, recording who, why and the share
    (``expected``: only if the version still has that status)."""
    if share is not None and not 0 < share <= 100:
        raise DeployRefused(f"--share must be a percentage in (0, 100], not {share:g}")
    registry = Registry(project.store)
    try:
        with project.store.leases.hold(_LEASE, ttl=30):
            who = actor or provenance.actor()
            return _stage(project, registry, ref, kind, share, force, reason, who, expected)
    except LeaseHeld:
        raise LeaseHeld("another deploy is in progress right now; retry in a moment") from None


def _stage(
    project: Project,
    registry: Registry,
    ref: str,
    kind: StageKind,
    share: float | None,
    force: bool,
    reason: str | None,
    actor: str,
    expected: str | None,
) -> ModelVersion:
    version = registry.resolve(ref)
    occupants = registry.versions(limit=1, status=kind)
    occupant = occupants[0].version if occupants else None
    refusal = staging_refusal(version, kind, occupant, force, reason)
    if refusal is not None:
        raise DeployRefused(refusal)
    verify_deployable(project, version, f"deployed as the {kind}")
    share = (share or default_share(project)) if kind == "canary" else 0.0
    why = reason or f"gate decision passed; deployed with `keel deploy {ref} --{kind}`"
    forced = not version.gate_passed
    staged = registry.transition(version.version, kind, actor, why, forced, expected)
    record(project, version.version, kind, share)
    return staged


def record(project: Project, version: int, kind: str, share: float) -> None:
    """Start the rollout record of ``version`` as ``kind`` at ``share`` percent, step 0."""
    now = time.time()
    values = {"version": version, "kind": kind, "share": share, "step_index": 0}
    values |= {"step_started_at": now, "state": "running", "updated_at": now}
    with project.store.begin() as connection:
        connection.execute(rollouts.delete().where(rollouts.c.version == version))
        connection.execute(rollouts.insert().values(**values))


def rollout(project: Project, version: int) -> Rollout | None:
    """The stored rollout state of ``version``, if it was ever staged."""
    query = sa.select(rollouts).where(rollouts.c.version == version)
    with project.store.engine.connect() as connection:
        row = connection.execute(query).one_or_none()
    return None if row is None else Rollout(**dict(row._mapping))


def staged(project: Project) -> list[Rollout]:
    """The running shadow and canary (at most one each), for the server to load: running
    rollout records whose version the registry still has in that status."""
    query = (
        sa.select(rollouts).where(rollouts.c.state == "running").order_by(rollouts.c.version.desc())
    )
    with project.store.engine.connect() as connection:
        running = [Rollout(**dict(row._mapping)) for row in connection.execute(query)]
    if not running:
        return []
    registry = Registry(project.store)
    return [found for found in running if registry.get(found.version).status == found.kind]
