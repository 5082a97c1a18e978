"""Feedback, status, metrics and the OpenAPI docs."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from keel.project import Project
from keel.serving import create_app
from keel.serving.tables import feedback
from tests.serving.helpers import GOOD, auth, backend, client, create_key


@pytest.mark.anyio
async def test_feedback_is_stored_by_prediction_id(project: Project) -> None:
    """Ground truth lands in keel_feedback with the key that sent it; a repeat replaces it."""
    key = create_key(project, "feedback")
    async with client(create_app(project, model=backend())) as c:
        await c.post("/v1/feedback", json={"prediction_id": "p1", "label": 0}, headers=auth(key))
        body = {"feedback": [{"prediction_id": "p1", "label": 1, "value": 9.5}]}
        response = await c.post("/v1/feedback", json=body, headers=auth(key))
    with project.store.engine.connect() as connection:
        query = sa.select(feedback.c.prediction_id, feedback.c.label, feedback.c.key_id)
        rows = connection.execute(query).all()
    key_id = key.split("_")[1]
    assert response.json() == {"stored": 1} and [tuple(r) for r in rows] == [("p1", "1", key_id)]


@pytest.mark.anyio
async def test_bad_feedback_gets_422(project: Project) -> None:
    """Feedback without a prediction id is refused with FastAPI's field messages."""
    key = create_key(project, "feedback")
    async with client(create_app(project, model=backend())) as c:
        response = await c.post("/v1/feedback", json={"label": 1}, headers=auth(key))
    assert response.status_code == 422


@pytest.mark.anyio
async def test_status_names_the_served_model(project: Project) -> None:
    """GET /v1/status reports the version, readiness and settings."""
    key = create_key(project)
    async with client(create_app(project, model=backend())) as c:
        status = (await c.get("/v1/status", headers=auth(key))).json()
    assert status["ready"] is True and status["model"]["version"] == "churn@1"


@pytest.mark.anyio
async def test_metrics_count_requests_by_route_status_and_version(project: Project) -> None:
    """After two predictions, /metrics shows them with the model version and no fallback."""
    key = create_key(project, "admin")
    async with client(create_app(project, model=backend())) as c:
        for _ in range(2):
            await c.post("/v1/predict", json={"instance": GOOD}, headers=auth(key))
        text = (await c.get("/metrics", headers=auth(key))).text
    line = (
        'keel_requests_total{fallback="",model_version="churn@1",route="/v1/predict",status="200"}'
    )
    assert f"{line} 2.0" in text
    assert "keel_batch_rows_count" in text and "keel_request_seconds_bucket" in text


@pytest.mark.anyio
async def test_the_openapi_schema_documents_predict(project: Project) -> None:
    """With a key, /openapi.json lists the routes and declares the bearer key they need."""
    key = create_key(project)
    async with client(create_app(project, model=backend())) as c:
        schema = (await c.get("/openapi.json", headers=auth(key))).json()
    assert {"/v1/predict", "/v1/feedback", "/v1/status"} <= set(schema["paths"])
    assert schema["security"] == [{"bearer": []}]


@pytest.mark.anyio
async def test_metrics_count_refusals_and_fallbacks(project_dir: Path) -> None:
    """A 429 raises keel_rate_limited_total; fallback answers are counted under their marker."""
    from tests.serving.helpers import Switchable, fitted_model, write_config

    write_config(project_dir, "rate_limit: 2/minute")
    with Project.open(project_dir) as project:
        key = create_key(project)
        admin = create_key(project, "admin", rate_limit="100/second")
        model = Switchable(fitted_model()[0])
        async with client(create_app(project, model=backend(model=model))) as c:
            model.mode = "raise"
            codes = [
                (
                    await c.post("/v1/predict", json={"instance": GOOD}, headers=auth(key))
                ).status_code
                for _ in range(3)
            ]
            text = (await c.get("/metrics", headers=auth(admin))).text
    fell_back = 'fallback="none",model_version="churn@1",route="/v1/predict",status="200"} 2.0'
    assert codes == [200, 200, 429]
    assert fell_back in text and "keel_rate_limited_total 1.0" in text


def test_a_bad_rate_limit_is_a_config_error(project_dir: Path) -> None:
    """serving.rate_limit that the limits library cannot parse fails loading keel.yaml."""
    from keel.errors import ConfigError
    from tests.serving.helpers import write_config

    write_config(project_dir, "rate_limit: lots")
    with pytest.raises(ConfigError, match="not a rate limit"):
        Project.open(project_dir)
