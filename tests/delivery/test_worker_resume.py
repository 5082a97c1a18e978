"""A real `keel worker` killed mid-rollout resumes from the step stored in keel_rollouts.

Both arms' traffic is written straight into the project's prediction log, as a server
writes it (route ``canary`` or ``production``), so the only process under test is the
worker: it is SIGKILLed once the canary has advanced a step, started again, and must take
the rollout on from that step to promotion.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from keel.delivery.staging import Rollout, rollout, stage
from keel.monitoring.log import PredictionLog
from keel.project import Project
from keel.training import Registry
from tests.delivery.helpers import stop
from tests.serving.helpers import import_fitted

CONFIG = """name: churn
store: '{store}'
rollout:
  canary:
    steps: [10, 50, 100]
    hold: {{min_requests: 20, min_time: 1s}}
"""

Seen = tuple[str, int, float, float]


def _canary(project: Project) -> int:
    """Version 1 in production, version 2 the canary at the first step (10%)."""
    registry = Registry(project.store)
    for seed in range(2):  # real artifacts: a deploy loads the version before recording it
        version = import_fitted(project, project.root, seed).version
        registry.record_gate(version, {"passed": True}, True, "gate")
    registry.transition(1, "production", "alice", "first model")
    return stage(project, "2", "canary").version


def _traffic(project: Project) -> None:
    """Ten healthy answers from each arm, committed to the log as a server's flush would."""
    log = PredictionLog.for_project(project)
    try:
        log.append(
            {
                "inputs": {"visits": i},
                "output": float(i % 2),
                "model_version": f"churn@{1 if arm == 'production' else 2}",
                "route": arm,
                "latency_ms": 4.0,
                "fallback": None,
            }
            for arm in ("canary", "production")
            for i in range(10)
        )
    finally:
        log.close()


def _worker(root: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "keel", "worker", "--every", "1s", "-p", str(root)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _observe(project: Project, version: int, seen: list[Seen]) -> Rollout:
    """Read the stored rollout and note it when it changed since the last look."""
    state = rollout(project, version)
    assert state is not None
    row = (state.state, state.step_index, state.share, state.step_started_at)
    if not seen or seen[-1] != row:
        seen.append(row)
    return state


def _run_until(
    project: Project, version: int, seen: list[Seen], done: Callable[[Rollout], bool]
) -> None:
    """Keep both arms busy and watch the rollout until ``done`` holds (60 s at most)."""
    deadline = time.monotonic() + 60
    while not done(_observe(project, version, seen)):
        assert time.monotonic() < deadline, f"the rollout stalled at {seen[-1]}"
        _traffic(project)
        time.sleep(0.05)


def test_a_killed_worker_resumes_the_rollout_from_the_recorded_step(
    project_dir: Path, store_url: str
) -> None:
    """SIGKILL after the 10% -> 50% step: the restarted worker goes 50% -> 100% -> promoted,
    never back to 10%, and the step it found keeps the start time recorded before the kill."""
    (project_dir / "keel.yaml").write_text(CONFIG.format(store=store_url))
    seen: list[Seen] = []
    with Project.open(project_dir) as project:
        canary = _canary(project)
        worker = _worker(project_dir)
        try:
            _run_until(project, canary, seen, lambda state: state.step_index >= 1)
            worker.kill()
            worker.wait()
            killed_at = _observe(project, canary, seen)
            worker = _worker(project_dir)
            _run_until(project, canary, seen, lambda state: state.state != "running")
        finally:
            stop(worker)
        production = Registry(project.store).production()
    assert (killed_at.step_index, killed_at.share) == (1, 50.0)
    assert [row[:3] for row in seen] == [
        ("running", 0, 10.0),
        ("running", 1, 50.0),
        ("running", 2, 100.0),
        ("promoted", 2, 100.0),
    ]
    assert production is not None and production.version == canary
