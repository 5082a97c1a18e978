"""The server answers a valid prediction with the fields people use."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.project import Project
from keel.serving import create_app
from tests.serving.helpers import GOOD, auth, backend, client, create_key, register_model


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


@pytest.mark.anyio
async def test_a_server_process_freezes_what_it_loaded_at_start(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app `keel serve` builds moves its start-up objects (libraries, the model) out of
    the collector's full passes once the model is loaded; apps built in-process do not."""
    import gc

    from keel.serving.runner import PROJECT_ENV, app_from_env

    register_model(project, tmp_path)
    monkeypatch.setenv(PROJECT_ENV, str(project.root))
    in_process = create_app(project)
    served = app_from_env()
    gc.unfreeze()
    try:
        async with in_process.running():
            assert gc.get_freeze_count() == 0
        async with served.running():
            assert served.state.served.version == "churn@1"
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
