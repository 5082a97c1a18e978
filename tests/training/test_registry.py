"""The registry: versions, status history with who/when/why, gate decisions."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from keel.errors import RegistryError, VersionNotFound
from keel.project import Project
from keel.training import Registry, train
from tests.helpers import registry_row
from tests.training.conftest import TRAINING

MakeProject = Callable[..., Project]


def _row(name: str = "churn") -> dict[str, object]:
    return registry_row(name=name, source="import")


@pytest.fixture
def registry(make_project: MakeProject, store_url: str) -> Registry:
    """A registry in a fresh project on each store backend."""
    return Registry(make_project("", store_url).store)


def test_versions_are_numbered_in_order(registry: Registry) -> None:
    """Each registration gets the next version number; list shows newest first."""
    for _ in range(3):
        registry.register(_row(), {"k": 1}, "alice")
    assert [v.version for v in registry.versions()] == [3, 2, 1]


def test_registration_is_in_the_history(registry: Registry) -> None:
    """A new version's history starts with who registered it, as a candidate."""
    version = registry.register(_row(), {}, "alice")
    [event] = registry.history(version.version)
    assert (event.to_status, event.actor, event.from_status) == ("candidate", "alice", None)


def test_promotion_archives_the_previous_production(registry: Registry) -> None:
    """Promoting a version archives the old production model, with the reason recorded."""
    first, second = (registry.register(_row(), {}, "a") for _ in range(2))
    registry.transition(first.version, "production", "bob", "first release")
    registry.transition(second.version, "production", "carol", "better auc")
    assert registry.get(first.version).status == "archived"
    last = registry.history(first.version)[-1]
    assert last.to_status == "archived" and "replaced in production by version 2" in last.reason
    assert registry.production() == registry.get(second.version)


def test_unknown_status_is_refused(registry: Registry) -> None:
    """Only the five statuses exist."""
    version = registry.register(_row(), {}, "a")
    with pytest.raises(RegistryError, match="not a status"):
        registry.transition(version.version, "live", "a", "why")


@pytest.mark.parametrize("ref", ["1", "v1", "churn@1", "latest"])
def test_resolve_references(registry: Registry, ref: str) -> None:
    """Numbers, v-prefixed numbers, name@number and latest all resolve."""
    registry.register(_row(), {}, "a")
    assert registry.resolve(ref).version == 1


def test_missing_version_is_a_clear_error(registry: Registry) -> None:
    """Asking for a version that does not exist says how to list them."""
    with pytest.raises(VersionNotFound, match="keel registry list"):
        registry.get(42)


def test_gate_decisions_are_recorded(registry: Registry) -> None:
    """The latest gate decision is returned with who recorded it; the version is marked."""
    version = registry.register(_row(), {}, "a")
    registry.record_gate(version.version, {"passed": False, "checks": []}, False, "ci")
    decision = registry.gate_decision(version.version)
    assert decision is not None and decision["actor"] == "ci" and decision["passed"] is False
    assert registry.get(version.version).gate_passed is False


def test_record_round_trips(make_project: MakeProject) -> None:
    """The full run record is stored apart from the narrow row and read back intact."""
    project = make_project(TRAINING)
    version = train(project).version
    assert Registry(project.store).record(version.version)["artifact"]["sha256"] == version.artifact


def test_concurrent_promotions_leave_one_production(registry: Registry) -> None:
    """Two promotions at once still leave exactly one production version."""
    for _ in range(4):
        registry.register(_row(), {}, "a")
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda v: registry.transition(v, "production", "x", "race"), [1, 2, 3, 4]))
    assert len(registry.versions(status="production")) == 1
