"""What each page shows, read through the other layers' public APIs.

Every reader returns plain values for a template. A layer whose tables hold nothing yet
gives an empty list or None, and the page says so; nothing here invents a number.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.data.model import DataVersion, Run
    from keel.monitoring.alerts import Alert
    from keel.project import Project
    from keel.serving.keys import ApiKey
    from keel.training.versions import ModelVersion, StatusEvent

__all__ = [
    "alerts",
    "check_key",
    "data_runs",
    "data_versions",
    "deployments",
    "feedback_labels",
    "registry_versions",
    "rollback_target",
    "status",
    "version_detail",
    "versions_diff",
]

_ACTIVE = ("open", "acknowledged")


def check_key(project: Project, presented: str) -> ApiKey | None:
    """The active key matching ``presented``, or None."""
    from keel.serving.keys import KeyRing, KeyStore

    return KeyRing(KeyStore(project.store).list(include_revoked=False)).check(presented.strip())


def status(project: Project) -> dict[str, Any]:
    """``keel status``: production, previous production, shadow, canary, latest."""
    from keel.training.status import status_of

    with project.store.engine.connect() as connection:
        return status_of(connection, project.config.name)


def registry_versions(project: Project, limit: int = 100) -> list[ModelVersion]:
    from keel.training.registry import Registry

    return Registry(project.store).versions(limit=limit)


def version_detail(project: Project, version: int) -> dict[str, Any]:
    """One version with its run record, status history and latest gate decision."""
    from keel.training.registry import Registry

    registry = Registry(project.store)
    return {
        "version": registry.get(version),
        "record": registry.record(version),
        "history": registry.history(version),
        "gate": registry.gate_decision(version),
    }


def versions_diff(project: Project, a: int, b: int) -> dict[str, Any]:
    from keel.training.diff import diff_records
    from keel.training.registry import Registry

    registry = Registry(project.store)
    return diff_records(a, registry.record(a), b, registry.record(b))


def deployments(project: Project, limit: int = 100) -> list[StatusEvent]:
    """Status changes into or out of serving (production, canary, shadow), newest first."""
    from keel.delivery.deployments import deployments as history

    return history(project, limit)


def rollback_target(project: Project) -> ModelVersion | None:
    """The version that was in production before the current one, if any."""
    from keel.training.registry import Registry

    found = status(project)["previous_production"]
    return None if found is None else Registry(project.store).get(int(found["version"]))


def alerts(project: Project, resolved: int = 50) -> tuple[list[Alert], list[Alert]]:
    """Open and acknowledged alerts, and the latest ``resolved`` resolved ones."""
    from keel.monitoring.alerts import AlertBook

    book = AlertBook(project.store)
    active = [a for a in book.list() if a.status in _ACTIVE]
    return active, book.list("resolved")[:resolved]


def data_versions(project: Project, limit: int = 100) -> list[DataVersion]:
    """Published data versions, newest first."""
    from keel.data.catalog import Catalog

    return list(reversed(Catalog(project.store).versions()))[:limit]


def data_runs(project: Project, limit: int = 50) -> list[Run]:
    from keel.data.catalog import Catalog

    return Catalog(project.store).runs(limit=limit)


def feedback_labels(project: Project, since: float) -> list[tuple[str, str]]:
    """(prediction id, label) of the ground truth received since ``since``."""
    from keel.serving.feedback import feedback_since

    return [(pid, str(label)) for pid, label in feedback_since(project.store, since)]
