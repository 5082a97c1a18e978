"""``keel gate`` and ``keel deploy`` against a real store and artifact store."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from keel.errors import DeployRefused
from keel.project import Project
from keel.training import Registry, deploy, run_gate, train
from tests.training.conftest import GATE, TRAINING

MakeProject = Callable[..., Project]


def test_gate_on_a_stored_version(make_project: MakeProject) -> None:
    """Gating later reloads the artifact and held-out rows and records a new decision."""
    project = make_project(TRAINING + GATE)
    version = train(project).version.version
    decision = run_gate(project, version)
    assert decision.passed
    assert next(c for c in decision.checks if c.name == "loadable").passed


def test_deploy_makes_production_and_records_who_and_why(
    make_project: MakeProject, store_url: str
) -> None:
    """Deploying a gated version makes it production with the actor and reason recorded."""
    project = make_project(TRAINING + GATE, store_url)
    version = train(project).version.version
    deployed = deploy(project, "latest", reason="first release")
    assert deployed.status == "production"
    event = Registry(project.store).history(version)[-1]
    assert event.reason == "first release" and not event.forced and event.actor


def test_deploy_refuses_an_ungated_version(make_project: MakeProject) -> None:
    """Without a gate decision, deploy is refused with the way out in the message."""
    project = make_project(TRAINING)
    train(project)
    with pytest.raises(DeployRefused, match=r"has not been gated.*--force --reason"):
        deploy(project, "latest")


def test_forced_deploy_is_recorded_as_forced(make_project: MakeProject) -> None:
    """A forced deploy goes ahead and its history row says forced, with the reason."""
    project = make_project(TRAINING)
    version = train(project).version.version
    deploy(project, "1", force=True, reason="incident 7 hotfix")
    event = Registry(project.store).history(version)[-1]
    assert event.forced and event.reason == "incident 7 hotfix"


def test_second_model_is_compared_with_production(make_project: MakeProject) -> None:
    """A new candidate's vs_production check scores production on the same held-out rows."""
    project = make_project(TRAINING + GATE)
    train(project)
    deploy(project, "1", reason="first")
    decision = train(project).decision
    assert decision is not None
    check = next(c for c in decision.checks if c.name == "vs_production:roc_auc")
    assert check.passed and "drop 0.0" in check.detail
