"""The server answers a valid prediction with the fields people use."""

from __future__ import annotations

import pytest

from keel.project import Project
from keel.serving import create_app
from tests.serving.helpers import GOOD, auth, backend, client, create_key


@pytest.mark.anyio
async def test_predict_answers_one_instance(project: Project) -> None:
    """A valid instance gets a prediction id, version, label, probability and no fallback."""
    key = create_key(project)
    app = create_app(project, model=backend())
    async with client(app) as c:
        response = await c.post("/v1/predict", json={"instance": GOOD}, headers=auth(key))
    assert response.status_code == 200, response.text
    answer = response.json()["predictions"][0]
    assert answer["model_version"] == "churn@1"
    assert answer["label"] in (0, 1)
    assert 0 <= answer["probability"] <= 1
    assert answer["fallback"] is None
