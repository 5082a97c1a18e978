"""The fallback chain: a failing, hanging or missing model still gets a 200 answer."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from keel.monitoring.log import PredictionLog
from keel.project import Project
from keel.serving import create_app
from tests.serving.helpers import (
    GOOD,
    Switchable,
    auth,
    backend,
    client,
    create_key,
    fitted_model,
    write_config,
)


def switchable_app(project: Project) -> tuple[Any, Switchable]:
    model = Switchable(fitted_model()[0])
    return create_app(project, model=backend(model=model)), model


async def predict_with(project: Project, app: Any, before: Any = None) -> dict[str, Any]:
    """One prediction through ``app``; ``before(client, key)`` runs first."""
    key = create_key(project)
    async with client(app) as c:
        if before is not None:
            await before(c, key)
        response = await c.post("/v1/predict", json={"instance": GOOD}, headers=auth(key))
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()["predictions"][0]
    return answer


def logged_failures(project: Project) -> list[str | None]:
    """Why the model did not answer, per logged prediction: the canary guards read it."""
    frame = PredictionLog.for_project(project).read()
    return [None if pd.isna(value) else value for value in frame["failure"]]


def configured(project_dir: Path, serving: str) -> Project:
    write_config(project_dir, "rate_limit: 1000/second\n" + serving)
    return Project.open(project_dir)


@pytest.mark.anyio
async def test_a_model_that_raises_gets_an_explicit_no_prediction(project: Project) -> None:
    """With the default chain, a model exception answers fallback none with the reason."""
    app, model = switchable_app(project)

    async def break_model(c: Any, key: str) -> None:
        model.mode = "raise"

    answer = await predict_with(project, app, break_model)
    assert answer["fallback"] == "none" and answer["prediction"] is None
    assert "ValueError" in answer["reason"]
    assert logged_failures(project) == ["error"]


@pytest.mark.anyio
async def test_a_model_that_hangs_is_cut_off_at_the_deadline(project_dir: Path) -> None:
    """A hung model answers fallback none within about serving.timeout_ms."""
    with configured(project_dir, "timeout_ms: 100") as project:
        app, model = switchable_app(project)

        async def hang(c: Any, key: str) -> None:
            model.mode = "hang"

        started = time.perf_counter()
        try:
            answer = await predict_with(project, app, hang)
        finally:
            model.release.set()
    assert answer["fallback"] == "none" and "100 ms" in answer["reason"]
    assert time.perf_counter() - started < 5
    assert logged_failures(project) == ["timeout"]


@pytest.mark.anyio
async def test_the_cache_step_serves_the_last_good_answer(project_dir: Path) -> None:
    """After a good answer for an input, a failing model repeats it marked cache."""
    with configured(project_dir, "fallback: [cache, none]") as project:
        app, model = switchable_app(project)
        first: dict[str, Any] = {}

        async def answer_then_break(c: Any, key: str) -> None:
            good = await c.post("/v1/predict", json={"instance": GOOD}, headers=auth(key))
            first.update(good.json()["predictions"][0])
            model.mode = "raise"

        answer = await predict_with(project, app, answer_then_break)
    assert answer["fallback"] == "cache" and answer["label"] == first["label"]


@pytest.mark.anyio
async def test_a_rule_expression_answers_when_the_model_fails(project_dir: Path) -> None:
    """serving.rule as an expression over the input gives the rule's prediction."""
    serving = 'fallback: [rule, none]\nrule: "1 if spend > 50 else 0"'
    with configured(project_dir, serving) as project:
        app, model = switchable_app(project)

        async def break_model(c: Any, key: str) -> None:
            model.mode = "raise"

        answer = await predict_with(project, app, break_model)
    assert answer["fallback"] == "rule" and answer["prediction"] == 1


@pytest.mark.anyio
async def test_a_rule_function_in_the_project_answers(project_dir: Path) -> None:
    """serving.rule as module:function calls the project's own code."""
    (project_dir / "rules.py").write_text("def churn_rule(row):\n    return 'maybe'\n")
    with configured(project_dir, "fallback: [rule, none]\nrule: rules:churn_rule") as project:
        app, model = switchable_app(project)

        async def break_model(c: Any, key: str) -> None:
            model.mode = "raise"

        answer = await predict_with(project, app, break_model)
    assert answer["fallback"] == "rule" and answer["prediction"] == "maybe"


@pytest.mark.anyio
async def test_without_a_production_model_the_answer_says_so(project: Project) -> None:
    """An empty registry and no rule: not ready, and predict is a 503 saying why."""
    app = create_app(project)
    key = create_key(project)
    async with client(app) as c:
        ready = await c.get("/readyz")
        response = await c.post("/v1/predict", json={"instance": GOOD}, headers=auth(key))
    assert ready.status_code == 503 and response.status_code == 503
    assert response.json()["error"].startswith("no model is loaded")


def test_the_chain_ends_in_none_even_when_not_configured() -> None:
    """A chain of only cache, with nothing cached, still answers none."""
    from keel.serving import FallbackBackend

    chain = FallbackBackend(None, ["cache"])
    assert chain.fall_back({"a": 1}, "why").fallback == "none"


class Doubler:
    """Any object with a version and an async predict can be served: no scikit-learn."""

    version = "doubler@1"

    async def predict(self, batch: list[dict[str, Any]]) -> list[Any]:
        from keel.serving import Prediction

        if any(row.get("x") == 13 for row in batch):
            raise RuntimeError("unlucky")
        return [Prediction(prediction=2 * row["x"], model_version=self.version) for row in batch]


@pytest.mark.anyio
async def test_any_backend_is_served_behind_the_same_chain(project: Project) -> None:
    """A custom backend answers, and its failure goes down the fallback chain like a model's."""
    key = create_key(project)
    async with client(create_app(project, model=Doubler())) as c:
        good = await c.post("/v1/predict", json={"instance": {"x": 4}}, headers=auth(key))
        bad = await c.post("/v1/predict", json={"instance": {"x": 13}}, headers=auth(key))
    assert good.json()["predictions"][0]["prediction"] == 8
    assert bad.json()["predictions"][0]["fallback"] == "none"
