"""Deployment history and rollback, read from and written to the model registry.

The registry records every status change with who, when and why; the deployment history
is the part of it that touched production, shadow or canary. Rolling back makes the
version that was in production before the current one serve again; every server replica
polls the registry (``serving.reload_interval``, half a second by default) and switches
without a restart.
"""

from __future__ import annotations

from collections.abc import Sequence

from keel.errors import RegistryError
from keel.project import Project
from keel.training.registry import Registry
from keel.training.verify import verify_deployable
from keel.training.versions import ModelVersion, StatusEvent

__all__ = ["DEPLOYED_STATUSES", "deployments", "previous_production", "rollback"]

DEPLOYED_STATUSES = ("production", "shadow", "canary")


def deployments(project: Project, limit: int | None = 50) -> list[StatusEvent]:
    """Status changes into or out of a deployed status, newest first (all of them when
    ``limit`` is None)."""
    return Registry(project.store).status_events(DEPLOYED_STATUSES, limit=limit)


def previous_production(events: Sequence[StatusEvent], current: int | None) -> int | None:
    """The last version other than ``current`` that was promoted to production."""
    for event in events:  # newest first
        if event.to_status == "production" and event.version != current:
            return event.version
    return None


def rollback(project: Project, reason: str, actor: str) -> ModelVersion:
    """Make the previous production version serve again, on record."""
    if not reason.strip():
        raise RegistryError("a rollback needs --reason 'why' so the incident is on record")
    registry = Registry(project.store)
    current = registry.production()
    promotions = _promotions(project)
    target = previous_production(promotions, current.version if current else None)
    if target is None:
        raise RegistryError(
            "there is no earlier production version to roll back to; deploy one with "
            "`keel deploy V`"
        )
    verify_deployable(project, registry.get(target), "rolled back to")
    return registry.transition(target, "production", actor, f"rollback: {reason}")


def _promotions(project: Project) -> list[StatusEvent]:
    registry = Registry(project.store)
    return registry.status_events(["production"], into_only=True, limit=None)
