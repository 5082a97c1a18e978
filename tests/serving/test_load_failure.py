"""A production version that does not load at start: a marked stand-in or the fallback
chain answers (never a silent null), readiness says so, and the critical alert stays open
until a version loads."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from keel.project import Project
from keel.serving import create_app
from tests.serving.helpers import GOOD, auth, client, create_key, register_model, write_config


def _tamper(project: Project, digest: str) -> None:
    """Flip one byte of a stored artifact, as a bad disk or an attacker would."""
    path = Path(project.artifacts_location) / "sha256" / digest[:2] / digest
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _load_alerts(project: Project) -> list[Any]:
    from keel.monitoring.alerts import AlertBook

    return [a for a in AlertBook(project.store).list() if a.rule == "model_load_failed"]


async def _predict(c: Any, key: str) -> Any:
    return await c.post("/v1/predict", json={"instance": GOOD}, headers=auth(key))


@pytest.mark.anyio
async def test_an_earlier_version_stands_in_marked_and_not_ready(
    project: Project, tmp_path: Path
) -> None:
    """Version 2 (production) is tampered before a restart: version 1 answers, each answer
    marked fallback "previous", /readyz is 503 naming the stand-in, the alert is open."""
    register_model(project, tmp_path, seed=0)
    bad = register_model(project, tmp_path, seed=1)
    _tamper(project, bad.artifact)
    key = create_key(project)
    async with client(create_app(project)) as c:
        ready = await c.get("/readyz")
        response = await _predict(c, key)
    answer = response.json()["predictions"][0]
    alerts = _load_alerts(project)
    assert ready.status_code == 503 and ready.json()["stand_in_for"] == str(bad.version)
    assert response.status_code == 200 and answer["model_version"] == "churn@1"
    assert answer["fallback"] == "previous" and answer["prediction"] is not None
    assert [(a.status, a.severity) for a in alerts] == [("open", "critical")]


@pytest.mark.anyio
async def test_without_an_earlier_version_the_rule_answers(
    project_dir: Path, tmp_path: Path
) -> None:
    """The only version is tampered and serving.rule is set: the rule answers, marked
    fallback "rule", while /readyz is 503 and the alert is open."""
    write_config(project_dir, 'fallback: [rule, none]\nrule: "1 if spend > 50 else 0"')
    with Project.open(project_dir) as project:
        bad = register_model(project, tmp_path, seed=0)
        _tamper(project, bad.artifact)
        key = create_key(project)
        async with client(create_app(project)) as c:
            ready = await c.get("/readyz")
            response = await _predict(c, key)
        alerts = _load_alerts(project)
    assert response.status_code == 200, response.text
    answer = response.json()["predictions"][0]
    assert ready.status_code == 503
    assert response.status_code == 200 and answer["fallback"] == "rule"
    assert answer["prediction"] == (1 if GOOD["spend"] > 50 else 0)
    assert [(a.status, a.severity) for a in alerts] == [("open", "critical")]


@pytest.mark.anyio
async def test_without_a_model_or_rule_predict_is_503(project: Project, tmp_path: Path) -> None:
    """The only version is tampered and no rule is set: /v1/predict answers 503 with one
    sentence naming the version, as /readyz does; never 200 with a null prediction."""
    bad = register_model(project, tmp_path, seed=0)
    _tamper(project, bad.artifact)
    key = create_key(project)
    async with client(create_app(project)) as c:
        ready = await c.get("/readyz")
        response = await _predict(c, key)
    assert ready.status_code == 503 and response.status_code == 503
    assert f"version {bad.version} failed to load" in response.json()["error"]


@pytest.mark.anyio
async def test_deploying_a_good_version_resolves_the_alert(
    project: Project, tmp_path: Path
) -> None:
    """After a failed start, deploying a version that loads makes the server ready, its
    answers unmarked, and resolves the model_load_failed alert."""
    register_model(project, tmp_path, seed=0)
    bad = register_model(project, tmp_path, seed=1)
    _tamper(project, bad.artifact)
    key = create_key(project)
    app = create_app(project)
    async with client(app) as c:
        open_before = [a.status for a in _load_alerts(project)]
        good = register_model(project, tmp_path, seed=2)
        await app.lifecycle.check_source()
        ready = await c.get("/readyz")
        answer = (await _predict(c, key)).json()["predictions"][0]
    assert open_before == ["open"]
    assert ready.status_code == 200 and answer["model_version"] == good.label
    assert answer["fallback"] is None
    assert [a.status for a in _load_alerts(project)] == ["resolved"]


@pytest.mark.anyio
async def test_rolling_back_to_the_stand_in_makes_it_production(
    project: Project, tmp_path: Path
) -> None:
    """With version 1 standing in for a broken version 2, making 1 production again
    serves it unmarked and ready."""
    from keel.delivery.deployments import rollback

    register_model(project, tmp_path, seed=0)
    bad = register_model(project, tmp_path, seed=1)
    _tamper(project, bad.artifact)
    key = create_key(project)
    app = create_app(project)
    async with client(app) as c:
        rollback(project, "version 2 does not load", "ops")
        await app.lifecycle.check_source()
        ready = await c.get("/readyz")
        answer = (await _predict(c, key)).json()["predictions"][0]
    assert ready.status_code == 200
    assert (answer["model_version"], answer["fallback"]) == ("churn@1", None)


def test_a_real_server_restarted_on_a_tampered_version_recovers(
    project: Project, tmp_path: Path
) -> None:
    """`keel serve` started on a tampered production version: version 1 answers marked
    "previous" while /readyz is 503 and the alert is open; deploying a good version is
    served within seconds, /readyz turns 200 and the alert resolves."""
    import time

    from tests.delivery.helpers import replicas, wait_for_answer

    register_model(project, tmp_path, seed=0)
    bad = register_model(project, tmp_path, seed=1)
    _tamper(project, bad.artifact)
    key = create_key(project)
    with replicas(project.root, 1) as (http,):
        assert wait_for_answer(http, key, "churn@1", 60) is not None
        answer = http.post("/v1/predict", json={"instance": GOOD}, headers=auth(key)).json()
        not_ready = http.get("/readyz").status_code
        open_alerts = [a.status for a in _load_alerts(project)]
        good = register_model(project, tmp_path, seed=2)
        assert wait_for_answer(http, key, good.label, 30) is not None
        ready = http.get("/readyz").status_code
        for _ in range(50):  # resolved right after the switch, off the request path
            if [a.status for a in _load_alerts(project)] == ["resolved"]:
                break
            time.sleep(0.1)
    assert answer["predictions"][0]["fallback"] == "previous" and not_ready == 503
    assert open_alerts == ["open"] and ready == 200
    assert [a.status for a in _load_alerts(project)] == ["resolved"]


@pytest.mark.anyio
async def test_a_refused_switch_keeps_the_alert_open_while_the_old_version_serves(
    project: Project, tmp_path: Path
) -> None:
    """Version 2 fails its digest check on a hot switch: version 1 keeps serving unmarked
    and ready, and the alert is open (not recorded as already resolved)."""
    register_model(project, tmp_path, seed=0)
    key = create_key(project)
    app = create_app(project)
    async with client(app) as c:
        bad = register_model(project, tmp_path, seed=1)
        _tamper(project, bad.artifact)
        await app.lifecycle.check_source()
        ready = await c.get("/readyz")
        answer = (await _predict(c, key)).json()["predictions"][0]
    assert ready.status_code == 200
    assert (answer["model_version"], answer["fallback"]) == ("churn@1", None)
    assert [(a.status, a.severity) for a in _load_alerts(project)] == [("open", "critical")]
