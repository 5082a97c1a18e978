"""The server with a canary or shadow beside production, in process over real HTTP routes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.monitoring.log import PredictionLog
from keel.project import Project
from keel.serving import create_app
from tests.delivery.helpers import stage_model
from tests.delivery.models import Faulty
from tests.serving.helpers import GOOD, auth, client, create_key, fitted_model, register_model
from tests.serving.helpers import write_config as write_serving


@pytest.fixture
def project(project_dir: Path) -> Iterator[Project]:
    write_serving(project_dir, "rate_limit: 10000/second\ntimeout_ms: 2000\nentity: customer_id")
    with Project.open(project_dir) as opened:
        yield opened


async def _ask(c: object, key: str, customer: str) -> dict[str, object]:
    body = {"instance": {**GOOD, "customer_id": customer}}
    response = await c.post("/v1/predict", json=body, headers=auth(key))  # type: ignore[attr-defined]
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def _logged(project: Project) -> list[dict[str, object]]:
    frame = PredictionLog.for_project(project).read()
    return frame.to_dict("records")  # type: ignore[no-any-return]


@pytest.mark.anyio
async def test_a_canary_answers_a_sticky_share_of_customers(
    project: Project, tmp_path: Path
) -> None:
    """At a 30% share about 30% of 300 customers get the canary, each one every time."""
    register_model(project, tmp_path, seed=0)
    canary = stage_model(project, tmp_path, "canary", share=30)
    key = create_key(project)
    async with client(create_app(project)) as c:
        first = [await _ask(c, key, f"c{i}") for i in range(300)]
        again = [await _ask(c, key, f"c{i}") for i in range(300)]
    versions = [str(body["model_version"]) for body in first]
    assert versions == [str(body["model_version"]) for body in again]
    share = versions.count(canary.label) / len(versions)
    assert 0.22 < share < 0.38 and set(versions) == {canary.label, "churn@1"}


@pytest.mark.anyio
async def test_a_batch_routes_each_customer_to_the_arm_it_gets_alone(
    project: Project, tmp_path: Path
) -> None:
    """One batch of 200 customers under a 50% canary: each row is answered (and logged and
    explained) by the arm that customer gets in a request of its own."""
    register_model(project, tmp_path, seed=0)
    canary = stage_model(project, tmp_path, "canary", share=50)
    key = create_key(project)
    customers = [f"c{i}" for i in range(200)]
    async with client(create_app(project)) as c:
        alone = [str((await _ask(c, key, name))["model_version"]) for name in customers]
        body = {"instances": [{**GOOD, "customer_id": name} for name in customers]}
        body["explain"] = True
        response = await c.post("/v1/predict", json=body, headers=auth(key))
    answers = response.json()["predictions"]
    assert [answer["model_version"] for answer in answers] == alone
    assert 60 < alone.count(canary.label) < 140
    assert all(answer["explanation"] for answer in answers)
    logged = [row for row in _logged(project) if row["prediction_id"] in
              {answer["prediction_id"] for answer in answers}]  # fmt: skip
    assert {(row["route"], row["model_version"]) for row in logged} == {
        ("canary", canary.label),
        ("production", "churn@1"),
    }


@pytest.mark.anyio
async def test_the_log_says_which_arm_answered(project: Project, tmp_path: Path) -> None:
    """Each logged prediction's route is canary or production, matching its version."""
    register_model(project, tmp_path, seed=0)
    canary = stage_model(project, tmp_path, "canary", share=50)
    key = create_key(project)
    async with client(create_app(project)) as c:
        for i in range(60):
            await _ask(c, key, f"c{i}")
    rows = _logged(project)
    pairs = {(row["route"], row["model_version"]) for row in rows}
    assert pairs == {("canary", canary.label), ("production", "churn@1")}


@pytest.mark.anyio
async def test_a_shadow_logs_every_request_under_the_same_id(
    project: Project, tmp_path: Path
) -> None:
    """Every live answer has a shadow entry with the same prediction id; live stays v1."""
    register_model(project, tmp_path, seed=0)
    shadow = stage_model(project, tmp_path, "shadow")
    key = create_key(project)
    async with client(create_app(project)) as c:
        bodies = [await _ask(c, key, f"c{i}") for i in range(40)]
        await asyncio.sleep(0.3)
    rows = _logged(project)
    live = {row["prediction_id"] for row in rows if row["route"] == "production"}
    shadowed = {row["prediction_id"] for row in rows if row["route"] == "shadow"}
    assert {str(body["model_version"]) for body in bodies} == {"churn@1"}
    assert live == shadowed and len(live) == 40
    assert {row["model_version"] for row in rows if row["route"] == "shadow"} == {shadow.label}


@pytest.mark.anyio
@pytest.mark.parametrize("fault", ["raise", "hang"])
async def test_a_failing_shadow_leaves_live_answers_intact(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    """A shadow that raises or hangs: every live answer is production's, fast, no fallback."""
    register_model(project, tmp_path, seed=0)
    stage_model(project, tmp_path, "shadow", model=Faulty(fitted_model(1)[0]))
    key = create_key(project, "admin")
    async with client(create_app(project)) as c:
        monkeypatch.setenv("KEEL_TEST_FAULT", fault)
        started = time.monotonic()
        bodies = [await _ask(c, key, f"c{i}") for i in range(30)]
        elapsed = time.monotonic() - started
        await asyncio.sleep(0.2)
        metrics = (await c.get("/metrics", headers=auth(key))).text
    predictions = [body["predictions"][0] for body in bodies]  # type: ignore[index]
    assert all(p["fallback"] is None and p["model_version"] == "churn@1" for p in predictions)
    assert elapsed < 2.5, "the hanging shadow must not delay live answers"
    assert "keel_shadow" in metrics
