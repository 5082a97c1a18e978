"""The closed loop's delivery half: candidate -> shadow -> canary -> production, or not.

Each test runs a real in-process server (its own prediction log) for traffic and calls
the worker's delivery step, ``advance_delivery``, between bursts, as ``keel worker`` does.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pandas as pd
import pytest

from keel.delivery import ShadowCriteria, compare
from keel.delivery.advance import advance_delivery, shadow_report
from keel.delivery.evidence import arm_stats, shadow_pairs
from keel.delivery.staging import rollout, stage, staged
from keel.errors import ConfigError
from keel.monitoring.alerts import AlertBook
from keel.monitoring.tables import retrain_runs
from keel.project import Project
from keel.training import Registry
from tests.delivery.helpers import traffic
from tests.delivery.models import Faulty
from tests.helpers import keel
from tests.serving.helpers import (
    fitted_model,
    import_fitted,
    register_model,
)

CONFIG = """name: churn
serving:
  rate_limit: 10000/second
  timeout_ms: 2000
  entity: customer_id
rollout:
  shadow: {min_requests: 40, min_agreement: 0.8}
  canary:
    steps: [50, 100]
    hold: {min_requests: 20, min_time: 1s}
    guards: {max_latency_p99_ms: 2000}  # a loaded test machine is not a slow model
"""


@pytest.fixture
def project(project_dir: Path) -> Iterator[Project]:
    (project_dir / "keel.yaml").write_text(CONFIG)
    with Project.open(project_dir) as opened:
        yield opened


def _candidate(project: Project, tmp: Path, seed: int, model: object = None) -> int:
    """A gated version as the retrain trigger leaves it: passed, candidate, on record."""
    version = import_fitted(project, tmp, seed, model, prefix="candidate").version
    Registry(project.store).record_gate(version, {"checks": []}, True, "tests")
    with project.store.begin() as connection:
        connection.execute(
            retrain_runs.insert().values(
                id=uuid.uuid4().hex,
                started_at=time.time(),
                finished_at=time.time(),
                reasons="drift",
                outcome="passed the gate",
                details=orjson.dumps({"version": version, "gate_passed": True}).decode(),
            )
        )
    return version


@pytest.mark.anyio
async def test_a_retrained_candidate_goes_shadow_canary_production(
    project: Project, tmp_path: Path
) -> None:
    """The whole delivery half of the loop without a person, each step on record."""
    register_model(project, tmp_path, seed=0)
    version = _candidate(project, tmp_path, seed=0)  # the same fit: full agreement

    assert advance_delivery(project)["candidate"] == {"version": version, "action": "shadow"}
    await traffic(project, 120, settle=0.5)
    shadow = advance_delivery(project)["shadow"]
    assert shadow["action"] == "canary", shadow
    assert shadow["agreement"] == 1.0 and shadow["errors"] == 0
    await traffic(project, 120, settle=0.5)
    canary = advance_delivery(project, time.time() + 5)["canary"]
    assert (canary["action"], canary["share"]) == ("advance", 100.0), canary
    await traffic(project, 40, settle=0.5)
    assert advance_delivery(project, time.time() + 5)["canary"]["action"] == "promote"

    registry = Registry(project.store)
    assert registry.get(version).status == "production"
    steps = [(e.to_status, e.actor) for e in registry.history(version) if e.from_status]
    assert steps == [(status, "keel-worker") for status in ("shadow", "canary", "production")]
    assert advance_delivery(project) == {}  # the candidate is not staged a second time
    routine = {a.rule: a.severity for a in AlertBook(project.store).list()}
    assert routine == {"shadow_promoted": "info", "canary_promoted": "info"}


@pytest.mark.anyio
async def test_a_shadow_that_fails_is_rejected_and_production_is_untouched(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shadow raising on one input in five: rejected after its minimum, with a warning."""
    register_model(project, tmp_path, seed=0)
    version = _candidate(project, tmp_path, seed=1, model=Faulty(fitted_model(1)[0]))
    advance_delivery(project)
    monkeypatch.setenv("KEEL_TEST_FAULT", "raise20")
    await traffic(project, 200, settle=0.5)
    shadow = advance_delivery(project)["shadow"]
    assert shadow["action"] == "rejected", shadow
    assert "did not answer" in shadow["reason"]
    assert Registry(project.store).get(version).status == "archived"
    assert Registry(project.store).production().version == 1  # type: ignore[union-attr]
    alerts = [a for a in AlertBook(project.store).list() if a.rule == "shadow_rejected"]
    assert alerts and alerts[0].severity == "warning"


@pytest.mark.anyio
async def test_a_shadow_that_never_answers_is_rejected_once_it_had_time_to_load(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No answer at all: nothing is held against it while replicas may still be loading
    it, then every live request counts as unanswered."""
    import sqlalchemy as sa

    from keel.delivery.tables import rollouts

    register_model(project, tmp_path, seed=0)
    version = _candidate(project, tmp_path, seed=1, model=Faulty(fitted_model(1)[0]))
    advance_delivery(project)
    monkeypatch.setenv("KEEL_TEST_FAULT", "raise")
    await traffic(project, 120, settle=0.5)
    report = shadow_report(project)
    assert report is not None and report.requests == 0  # still within the load grace

    with project.store.begin() as connection:  # as if it was staged a minute ago
        moved = rollouts.c.step_started_at - 60
        update = sa.update(rollouts).where(rollouts.c.version == version)
        connection.execute(update.values(step_started_at=moved))
    shadow = advance_delivery(project)["shadow"]
    assert shadow["action"] == "rejected", shadow
    assert "did not answer 120 of 120" in shadow["reason"]


@pytest.mark.anyio
async def test_a_forced_shadow_waits_for_a_person(project: Project, tmp_path: Path) -> None:
    """The worker does not carry a version that never passed its gate on to canary."""
    from tests.delivery.helpers import stage_model

    register_model(project, tmp_path, seed=0)
    forced = stage_model(project, tmp_path, "shadow", seed=0)
    await traffic(project, 120, settle=0.5)
    shadow = advance_delivery(project)["shadow"]
    assert shadow["action"].startswith("waiting: version")
    assert Registry(project.store).get(forced.version).status == "shadow"
    assert staged(project)[0].kind == "shadow"


def _frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    base = pd.Timestamp("2026-11-26T00:00:00Z")
    for i, row in enumerate(rows):
        row.setdefault("time", base + pd.Timedelta(seconds=i))
        row.setdefault("fallback", None)
        row.setdefault("latency_ms", 1.0)
    return pd.DataFrame(rows)


def test_shadow_pairs_span_what_the_shadow_answered() -> None:
    """Requests before the shadow loaded and after its last logged answer are left out;
    inside the span, a request without a shadow answer counts as unanswered."""
    live = [{"prediction_id": f"p{i}", "route": "production", "output": 1.0} for i in range(6)]
    shadow = [
        {"prediction_id": pid, "route": "shadow", "output": 1.0, "time": pd.Timestamp.now("UTC")}
        for pid in ("p1", "p2", "p4")
    ]
    pairs = shadow_pairs(_frame(live + shadow), {"p2": 1.0})
    assert [p.shadow for p in pairs] == [1.0, 1.0, None, 1.0]  # p1..p4; p3 unanswered
    assert [p.label for p in pairs] == [None, 1.0, None, None]
    assert [p.failure for p in pairs] == [None, None, "missing", None]


def test_the_shadow_report_says_why_requests_went_unanswered() -> None:
    """A shadow that raised, timed out, or has no logged answer at all: each is counted
    by its cause (a failed answer logged before causes were kept reads as an error)."""
    now = pd.Timestamp.now("UTC")
    live = [{"prediction_id": f"p{i}", "route": "production", "output": 1.0} for i in range(6)]
    failed = {"fallback": "none", "output": None, "latency_ms": 5.0}
    shadow = [
        {"prediction_id": "p0", "output": 1.0},
        {"prediction_id": "p1", **failed, "failure": "timeout"},
        {"prediction_id": "p2", **failed, "failure": "error"},
        {"prediction_id": "p3", **failed},
        {"prediction_id": "p5", "output": 1.0},
    ]
    rows = live + [{**row, "route": "shadow", "time": now} for row in shadow]
    report = compare(shadow_pairs(_frame(rows), {}), "classification", ShadowCriteria(5))
    assert report.errors == 4 and report.compared == 2
    assert report.unanswered == {"error": 2, "missing": 1, "timeout": 1}


def test_the_realised_metric_needs_enough_labels() -> None:
    """Accuracy per arm from feedback, judged only once 30 requests have labels."""
    rows = [{"prediction_id": f"p{i}", "output": float(i % 2)} for i in range(40)]
    right = {f"p{i}": float(i % 2) for i in range(40)}
    assert arm_stats(rows, right).metric == 1.0
    assert arm_stats(rows, dict(list(right.items())[:29])).metric is None
    wrong = {key: 1 - value for key, value in right.items()}
    assert arm_stats(rows, wrong).metric == 0.0


@pytest.mark.anyio
async def test_a_canary_worse_on_labels_is_rolled_back(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Feedback that says the canary is wrong where production is right rolls it back."""
    from keel.delivery.evidence import read_since
    from keel.monitoring.feedback import store_feedback
    from tests.delivery.helpers import stage_model

    register_model(project, tmp_path, seed=0)
    canary = stage_model(project, tmp_path, "canary", seed=0, share=50)
    await traffic(project, 160, settle=0.5)
    frame = read_since(project, 0)
    truth = [
        {"prediction_id": row["prediction_id"], "label": str(int(row["output"]) ^ flip)}
        for row in frame.to_dict("records")
        for flip in [int(row["route"] == "canary")]
    ]
    store_feedback(project.store, pd.DataFrame(truth), time.time())
    done = advance_delivery(project, time.time() + 5)["canary"]
    assert done["action"] == "rollback" and "realised metric" in done["reason"]
    assert Registry(project.store).get(canary.version).status == "archived"


def test_canary_steps_must_rise_to_100(project_dir: Path) -> None:
    """Steps that do not end at 100 or do not rise are a config error naming the key."""
    (project_dir / "keel.yaml").write_text(
        "name: churn\nrollout:\n  canary:\n    steps: [10, 5, 100]\n"
    )
    with pytest.raises(ConfigError, match="steps"):
        Project.open(project_dir)


def test_keel_shadow_reports_the_running_shadow(project: Project, tmp_path: Path) -> None:
    """`keel shadow --json` gives the report; with no shadow it says how to start one."""
    none = keel("shadow", "--json", "-p", str(project.root))
    assert none.returncode == 0 and json.loads(none.stdout) == {"shadow": None}
    register_model(project, tmp_path, seed=0)
    version = _candidate(project, tmp_path, seed=0)
    advance_delivery(project)
    asyncio.run(traffic(project, 60, settle=0.5))
    report = json.loads(keel("shadow", "--json", "-p", str(project.root)).stdout)["shadow"]
    assert report["version"] == version and report["agreement"] == 1.0
    assert sum(report["unanswered"].values()) == report["errors"]
    human = keel("shadow", "-p", str(project.root)).stdout
    assert "agreement with production: 100.0%" in human and "verdict" in human
    assert f"unanswered by the shadow: {report['errors']}" in human
    assert rollout(project, version) is not None


def test_a_rollback_cut_short_is_finished_with_its_alert(project: Project, tmp_path: Path) -> None:
    """Killed after archiving the canary but before the record and the alert: the next
    step finishes both, once."""
    from keel.delivery.advance import ACTOR
    from tests.delivery.helpers import stage_model

    register_model(project, tmp_path, seed=0)
    canary = stage_model(project, tmp_path, "canary", seed=1, share=50)
    why = "canary rolled back: error rate 5/20 (at least 6.0%) exceeds 1.0%"
    Registry(project.store).transition(canary.version, "archived", ACTOR, why)

    done = advance_delivery(project)
    assert done == {"finished": [{"version": canary.version, "action": "rolled_back"}]}
    found = rollout(project, canary.version)
    assert found is not None and found.state == "rolled_back"
    alerts = [a for a in AlertBook(project.store).list() if a.rule == "canary_rolled_back"]
    assert len(alerts) == 1 and "error rate 5/20" in alerts[0].summary
    assert advance_delivery(project) == {}


def test_a_person_archiving_the_canary_ends_its_rollout_quietly(
    project: Project, tmp_path: Path
) -> None:
    """A canary a person archived is not promoted later, and raises no alert."""
    from tests.delivery.helpers import stage_model

    register_model(project, tmp_path, seed=0)
    canary = stage_model(project, tmp_path, "canary", seed=1, share=50)
    Registry(project.store).transition(canary.version, "archived", "ops@host", "not today")
    assert advance_delivery(project)["finished"] == [{"version": canary.version, "action": "ended"}]
    assert not [a for a in AlertBook(project.store).list() if a.rule == "canary_rolled_back"]


def test_a_move_expecting_an_old_status_changes_nothing(project: Project, tmp_path: Path) -> None:
    """The worker's promotion names the status it saw; a person's change since wins."""
    from keel.errors import RegistryError
    from tests.delivery.helpers import stage_model

    register_model(project, tmp_path, seed=0)
    canary = stage_model(project, tmp_path, "canary", seed=1, share=50)
    registry = Registry(project.store)
    registry.transition(canary.version, "archived", "ops@host", "not today")
    with pytest.raises(RegistryError, match="archived now, not canary"):
        registry.transition(canary.version, "production", "keel-worker", "x", expected="canary")
    assert registry.get(canary.version).status == "archived"


def test_two_workers_take_the_step_one_at_a_time(project: Project) -> None:
    """While one worker holds the delivery step, another skips it and says why."""
    with project.store.leases.hold("keel:delivery:advance", ttl=30):
        assert "another worker" in advance_delivery(project)["skipped"]


@pytest.mark.anyio
async def test_keel_status_shows_the_last_rollout_and_why(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After an automatic rollback, `keel status` says which version, how far, and why."""
    from keel.training.status import read_status, render_status

    register_model(project, tmp_path, seed=0)
    canary = _candidate(project, tmp_path, seed=1, model=Faulty(fitted_model(1)[0]))
    stage(project, str(canary), "canary", share=50)
    monkeypatch.setenv("KEEL_TEST_FAULT", "constant")
    await traffic(project, 120, settle=0.5)
    advance_delivery(project, time.time() + 5)
    data = read_status(project.root)
    assert data["rollout"]["state"] == "rolled_back" and data["rollout"]["version"] == canary
    line = next(x for x in render_status(data) if x.startswith("last rollout"))
    assert f"version {canary} as canary at 50% of traffic, rolled back" in line
    assert "predicts a constant" in line
