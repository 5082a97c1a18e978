"""The production path: the model comes from the registry and switches without a restart."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from keel.project import Project
from keel.serving import create_app
from tests.serving.helpers import GOOD, auth, client, create_key, register_model


async def versions_served(c: object, key: str, n: int) -> list[str]:
    async def one() -> str:
        response = await c.post("/v1/predict", json={"instance": GOOD}, headers=auth(key))  # type: ignore[attr-defined]
        assert response.status_code == 200
        assert response.json()["predictions"][0]["fallback"] is None
        return str(response.json()["model_version"])

    return list(await asyncio.gather(*(one() for _ in range(n))))


@pytest.mark.anyio
async def test_the_server_loads_the_production_version(project: Project, tmp_path: Path) -> None:
    """With no model handed in, the registry's production version is served."""
    register_model(project, tmp_path)
    key = create_key(project)
    async with client(create_app(project)) as c:
        ready = await c.get("/readyz")
        served = await versions_served(c, key, 1)
    assert ready.status_code == 200 and served == ["churn@1"]


@pytest.mark.anyio
async def test_a_new_production_version_is_switched_in_without_dropping_requests(
    project: Project, tmp_path: Path
) -> None:
    """Requests in flight while version 2 is deployed all succeed, on 1 or 2; then on 2."""
    register_model(project, tmp_path, seed=0)
    key = create_key(project)
    app = create_app(project)
    async with client(app) as c:
        register_model(project, tmp_path, seed=1)
        during, _ = await asyncio.gather(versions_served(c, key, 40), app.lifecycle.check_source())
        after = await versions_served(c, key, 3)
    assert set(during) <= {"churn@1", "churn@2"} and after == ["churn@2"] * 3


@pytest.mark.anyio
async def test_a_corrupt_artifact_leaves_the_previous_version_serving(
    project: Project, tmp_path: Path
) -> None:
    """Version 2 fails its digest check: version 1 keeps serving and the failure is recorded."""
    register_model(project, tmp_path, seed=0)
    key = create_key(project, "admin")
    app = create_app(project)
    async with client(app) as c:
        bad = register_model(project, tmp_path, seed=1)
        artifact = Path(project.artifacts_location) / "sha256" / bad.artifact[:2] / bad.artifact
        os.chmod(artifact, 0o644)
        artifact.write_bytes(b"not the model")
        await app.lifecycle.check_source()
        served = await versions_served(c, key, 1)
        status = (await c.get("/v1/status", headers=auth(key))).json()
        metrics = (await c.get("/metrics", headers=auth(key))).text
    from keel.monitoring.alerts import AlertBook

    alerts = [a for a in AlertBook(project.store).list() if a.rule == "model_load_failed"]
    assert served == ["churn@1"]
    assert status["last_load_error"]["ref"] == str(bad.version)
    assert alerts and alerts[0].severity == "critical"
    assert "keel_model_load_failures_total 1.0" in metrics


@pytest.mark.anyio
async def test_serving_continues_when_the_metadata_store_goes_away(
    project: Project, tmp_path: Path
) -> None:
    """With the database file gone, predictions succeed, status says unreachable, and the
    prediction log keeps the answers in its spool until the store is back."""
    register_model(project, tmp_path)
    key = create_key(project)
    app = create_app(project)
    async with client(app) as c:
        project.store.engine.dispose()
        database = project.state_dir / "keel.db"
        database.rename(database.with_suffix(".gone"))
        database.write_bytes(b"this is not a database file at all" * 200)
        await app.lifecycle.refresh_keys()
        await app.lifecycle.check_source()
        served = await versions_served(c, key, 3)
        status = (await c.get("/v1/status", headers=auth(key))).json()
    spooled = list((project.state_dir / "predictions" / "spool").glob("*.log"))
    assert served == ["churn@1"] * 3 and status["metadata_store"] == "unreachable"
    assert spooled, "the answers stay in the spool, to be rolled on the next start"


@pytest.mark.anyio
async def test_the_server_notices_a_deploy_by_itself(project_dir: Path, tmp_path: Path) -> None:
    """With reload_interval 100ms, a deploy is served within a second, no call needed."""
    from tests.serving.helpers import write_config

    write_config(project_dir, "reload_interval: 100ms\nrate_limit: 1000/second")
    with Project.open(project_dir) as project:
        register_model(project, tmp_path, seed=0)
        key = create_key(project)
        async with client(create_app(project)) as c:
            register_model(project, tmp_path, seed=1)
            for _ in range(50):
                served = await versions_served(c, key, 1)
                if served == ["churn@2"]:
                    break
                await asyncio.sleep(0.05)
    assert served == ["churn@2"]
