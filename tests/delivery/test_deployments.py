"""Rollback and deployment history, on every metadata store backend and with a real server."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from keel.delivery.deployments import deployments, rollback
from keel.errors import RegistryError
from keel.project import Project
from keel.training import Registry
from tests.helpers import free_port, registry_row
from tests.serving.helpers import import_fitted, register_model, write_config


def _two_deploys(project: Project) -> Registry:
    registry = Registry(project.store)
    for seed in range(2):  # real artifacts: a rollback loads its target before recording it
        import_fitted(project, project.root, seed)
    registry.transition(1, "production", "alice", "first model")
    registry.transition(2, "production", "bob", "better auc")
    return registry


def test_rollback_serves_the_previous_production_version(project: Project) -> None:
    """After v1 then v2, a rollback makes v1 production again, with the reason recorded."""
    registry = _two_deploys(project)
    back = rollback(project, "v2 fails on weekends", "carol")
    assert back.version == 1 and back.status == "production"
    assert registry.get(2).status == "archived"
    latest = deployments(project, 1)[0]
    assert (latest.version, latest.actor, latest.reason) == (
        1,
        "carol",
        "rollback: v2 fails on weekends",
    )


def test_rolling_back_twice_goes_back_to_the_newer_version(project: Project) -> None:
    """A rollback of a rollback restores the version that was rolled back."""
    _two_deploys(project)
    rollback(project, "first", "carol")
    assert rollback(project, "it was the data, not v2", "carol").version == 2


def test_rollback_without_an_earlier_version_is_refused(project: Project) -> None:
    """With only one version ever in production there is nothing to roll back to."""
    registry = Registry(project.store)
    registry.register(registry_row(), {}, "trainer")
    registry.transition(1, "production", "alice", "first")
    with pytest.raises(RegistryError, match="no earlier production version"):
        rollback(project, "why", "carol")


def test_rollback_needs_a_reason(project: Project) -> None:
    """An empty reason is refused: the incident must be on record."""
    _two_deploys(project)
    with pytest.raises(RegistryError, match="--reason"):
        rollback(project, "  ", "carol")


def test_history_lists_deployed_changes_newest_first(project: Project) -> None:
    """Registration events are left out; promotions and archivals are in, newest first."""
    _two_deploys(project)
    changes = [(e.version, e.from_status, e.to_status) for e in deployments(project)]
    assert changes == [
        (2, "candidate", "production"),
        (1, "production", "archived"),
        (1, "candidate", "production"),
    ]


def test_cli_rollback_and_deployments_json(project: Project) -> None:
    """`keel rollback --json` and `keel deployments --json` for scripts."""
    _two_deploys(project)
    root = str(project.root)
    done = subprocess.run(
        [sys.executable, "-m", "keel", "rollback", "--reason", "pager", "--json", "-p", root],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(done.stdout)["version"] == 1
    listed = subprocess.run(
        [sys.executable, "-m", "keel", "deployments", "--json", "-p", root],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(listed.stdout)[0]["reason"] == "rollback: pager"


def test_a_running_server_switches_back_without_a_restart(
    project_dir: Path, tmp_path: Path
) -> None:
    """A real `keel serve` answers with the previous model soon after `keel rollback`.

    How soon is a target (2 s), measured by benchmarks/bench_rollback.py, not asserted here.
    """
    write_config(project_dir, "rate_limit: 1000/second")
    with Project.open(project_dir) as project:
        first = register_model(project, tmp_path, seed=0)
        second = register_model(project, tmp_path, seed=1)
    port = free_port()
    command = [sys.executable, "-m", "keel", "serve", "--port", str(port), "-p", str(project_dir)]
    url = f"http://127.0.0.1:{port}/readyz"
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as server:
        try:
            assert wait_for_model(url, f"churn@{second.version}", 90)
            with Project.open(project_dir) as project:
                rollback(project, "bad canary", "oncall")
            assert wait_for_model(url, f"churn@{first.version}", 30)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)


def wait_for_model(url: str, model: str, seconds: float) -> bool:
    """Poll /readyz until it names ``model``; False after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).json().get("model") == model:
                return True
        except (httpx.TransportError, ValueError):
            pass
        time.sleep(0.05)
    return False
