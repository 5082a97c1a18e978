"""`keel deploy V --shadow` and `--canary`: gated, recorded, one at a time, on every backend."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from keel.delivery.staging import rollout, stage
from keel.errors import DeployRefused, KeelError
from keel.project import Project
from keel.training import Registry
from tests.serving.helpers import import_fitted


def _gated(project: Project, count: int, passed: bool = True) -> Registry:
    registry = Registry(project.store)
    for seed in range(count):  # real artifacts: a deploy loads the version before recording it
        version = import_fitted(project, project.root, seed).version
        registry.record_gate(version, {"passed": passed}, passed, "gate")
    registry.transition(1, "production", "alice", "first model")
    return registry


def test_canary_deploy_records_status_and_share(project: Project) -> None:
    """A gated version becomes the canary; its share and first step are stored."""
    registry = _gated(project, 2)
    staged = stage(project, "2", "canary", share=10)
    state = rollout(project, 2)
    assert staged.status == "canary" and registry.get(1).status == "production"
    assert state is not None
    assert (state.kind, state.share, state.step_index, state.state) == (
        "canary",
        10.0,
        0,
        "running",
    )


def test_canary_share_defaults_to_the_first_configured_step(
    project_dir: Path, store_url: str
) -> None:
    """Without --share the canary starts at keel.yaml's first rollout.canary step."""
    (project_dir / "keel.yaml").write_text(
        f"name: churn\nstore: '{store_url}'\nrollout:\n  canary:\n    steps: [2, 50, 100]\n"
    )
    with Project.open(project_dir) as opened:
        _gated(opened, 2)
        stage(opened, "2", "canary")
        state = rollout(opened, 2)
    assert state is not None and state.share == 2.0


def test_shadow_deploy_keeps_production(project: Project) -> None:
    """A shadow is recorded beside production, which keeps serving."""
    registry = _gated(project, 2)
    assert stage(project, "2", "shadow").status == "shadow"
    production = registry.production()
    assert production is not None and production.version == 1


def test_staging_an_ungated_version_is_refused(project: Project) -> None:
    """Without a passing gate decision (and no --force --reason) the deploy is refused."""
    _gated(project, 2, passed=False)
    with pytest.raises(DeployRefused, match="failed its gate"):
        stage(project, "2", "canary")


def test_forced_staging_is_recorded_as_forced(project: Project) -> None:
    """--force with a reason stages an ungated version and marks the event forced."""
    registry = _gated(project, 2, passed=False)
    stage(project, "2", "shadow", force=True, reason="hotfix")
    event = registry.history(2)[-1]
    assert (event.to_status, event.forced, event.reason) == ("shadow", True, "hotfix")


def test_a_second_canary_is_refused(project: Project) -> None:
    """While one canary runs another version cannot become the canary."""
    _gated(project, 3)
    stage(project, "2", "canary")
    with pytest.raises(DeployRefused, match="version 2 is already the canary"):
        stage(project, "3", "canary")


def test_two_deploys_at_once_one_wins(project: Project) -> None:
    """Two canary deploys racing: exactly one succeeds, the other gets a clear error."""
    registry = _gated(project, 3)
    errors: list[KeelError] = []
    barrier = threading.Barrier(2)

    def deploy(ref: str) -> None:
        barrier.wait()
        try:
            stage(project, ref, "canary")
        except KeelError as error:
            errors.append(error)

    threads = [threading.Thread(target=deploy, args=(ref,)) for ref in ("2", "3")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 1
    assert "already the canary" in str(errors[0]) or "in progress" in str(errors[0])
    assert len(registry.versions(status="canary")) == 1


def test_cli_deploy_canary_json(project: Project) -> None:
    """`keel deploy 2 --canary --share 5 --json` prints the staged version."""
    _gated(project, 2)
    command = [sys.executable, "-m", "keel", "deploy", "2", "--canary", "--share", "5"]
    done = subprocess.run(
        [*command, "--json", "-p", str(project.root)], capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout)["status"] == "canary"


def test_cli_refuses_shadow_and_canary_together(project: Project) -> None:
    """Both flags at once is a user mistake reported in one line."""
    _gated(project, 2)
    command = [sys.executable, "-m", "keel", "deploy", "2", "--canary", "--shadow"]
    done = subprocess.run([*command, "-p", str(project.root)], capture_output=True, text=True)
    assert done.returncode == 1 and "choose one of" in done.stderr
