"""The worker's rollout step on a real in-process server's prediction log, on every store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from keel.delivery.advance import advance_rollout, arm_stats, canary_policy
from keel.delivery.rollout import CanaryPolicy, Step, decide
from keel.delivery.staging import rollout
from keel.monitoring.alerts import AlertBook
from keel.project import Project
from keel.schema import RolloutConfig
from keel.training import Registry
from tests.delivery.helpers import stage_model, traffic
from tests.delivery.models import Faulty
from tests.serving.helpers import fitted_model, register_model

CONFIG = """name: churn
serving:
  rate_limit: 10000/second
  timeout_ms: 2000
  entity: customer_id
rollout:
  canary:
    steps: [50, 100]
    hold: {min_requests: 20, min_time: 1s}
    guards: {max_latency_p99_ms: 2000}  # p99 of 60 requests is their slowest: load, not model
"""


@pytest.fixture
def project(project_dir: Path, store_url: str) -> Iterator[Project]:
    """A project with a two-step canary policy, on each metadata store backend."""
    (project_dir / "keel.yaml").write_text(f"{CONFIG}store: '{store_url}'\n")
    with Project.open(project_dir) as opened:
        yield opened


def test_keel_yaml_rollout_maps_to_the_policy() -> None:
    """Steps, hold and guards in keel.yaml become the decision's policy."""
    config = RolloutConfig.model_validate(
        {"canary": {"steps": [10, 100], "hold": {"min_requests": 7, "min_time": "2m"}}}
    )
    policy = canary_policy(config)
    assert (policy.steps, policy.min_requests, policy.min_seconds) == ((10, 100), 7, 120.0)


def test_arm_stats_count_fallbacks_and_latency() -> None:
    """A fallback counts as a failed call; p99 comes from the logged latencies."""
    rows = [{"fallback": None, "latency_ms": float(i), "output": 1} for i in range(99)]
    rows.append({"fallback": "none", "latency_ms": 500.0, "output": None})
    stats = arm_stats(rows)
    assert (stats.requests, stats.errors, stats.latency_p99_ms) == (100, 1, 98.0)
    assert len(stats.predictions) == 99


def test_a_timeout_is_a_fallback_but_not_an_error() -> None:
    """The log marks why a call fell back: only a model that raised counts as an error, and
    a row logged before the marker existed still counts as one."""
    answered = [{"fallback": None, "latency_ms": 2.0, "output": 1}] * 97
    rows = [
        *answered,
        {"fallback": "none", "failure": "timeout", "latency_ms": 250.0, "output": None},
        {"fallback": "none", "failure": "error", "latency_ms": 3.0, "output": None},
        {"fallback": "none", "latency_ms": 3.0, "output": None},
    ]
    stats = arm_stats(rows)
    assert (stats.requests, stats.fallbacks, stats.errors) == (100, 3, 2)


def test_a_slow_canary_breaches_the_fallback_guard_not_the_error_guard() -> None:
    """Timeouts on 4% of a canary's calls: rolled back for its fallback rate, with no
    error rate in the reason, so on-call looks at latency, not at the model's code."""
    timeouts = [{"fallback": "none", "failure": "timeout", "latency_ms": 250.0}] * 16
    canary = arm_stats([*[{"fallback": None, "latency_ms": 2.0, "output": 1}] * 384, *timeouts])
    production = arm_stats([{"fallback": None, "latency_ms": 2.0, "output": 1}] * 400)
    decision = decide(CanaryPolicy(), Step(0, 0.0), canary, production, time.time())
    assert decision.action == "rollback"
    assert decision.breaches[0].startswith("fallback rate 16/400")
    assert not any("error rate" in breach for breach in decision.breaches)


@pytest.mark.anyio
async def test_a_canary_failing_one_input_in_five_is_rolled_back(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Raising on 20% of inputs: the worker archives the canary and raises a critical alert."""
    register_model(project, tmp_path, seed=0)
    canary = stage_model(project, tmp_path, "canary", model=Faulty(fitted_model(1)[0]), share=50)
    monkeypatch.setenv("KEEL_TEST_FAULT", "raise20")
    await traffic(project)
    done = advance_rollout(project, time.time())
    alerts = [a for a in AlertBook(project.store).list() if a.rule == "canary_rolled_back"]
    production = Registry(project.store).production()
    assert done is not None and done["action"] == "rollback"
    assert Registry(project.store).get(canary.version).status == "archived"
    assert production is not None and production.version == 1
    assert alerts and alerts[0].severity == "critical"


@pytest.mark.anyio
async def test_a_canary_predicting_a_constant_is_rolled_back(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A canary that answers the same label for everyone is caught and archived."""
    register_model(project, tmp_path, seed=0)
    canary = stage_model(project, tmp_path, "canary", model=Faulty(fitted_model(1)[0]), share=50)
    monkeypatch.setenv("KEEL_TEST_FAULT", "constant")
    await traffic(project)
    done = advance_rollout(project, time.time())
    assert done is not None and "constant" in done["reason"]
    assert Registry(project.store).get(canary.version).status == "archived"


@pytest.mark.anyio
async def test_a_healthy_canary_advances_then_is_promoted(project: Project, tmp_path: Path) -> None:
    """Guards held and the hold met: 50% -> 100% is recorded, then the canary is promoted."""
    register_model(project, tmp_path, seed=0)
    canary = stage_model(project, tmp_path, "canary", share=50)
    await traffic(project)
    later = time.time() + timedelta(seconds=5).total_seconds()
    first = advance_rollout(project, later)
    state = rollout(project, canary.version)
    assert first is not None and first["action"] == "advance"
    assert state is not None and (state.share, state.step_index) == (100.0, 1)
    await traffic(project, 60)
    second = advance_rollout(project, time.time() + 5)
    assert second is not None and second["action"] == "promote"
    assert Registry(project.store).get(canary.version).status == "production"
