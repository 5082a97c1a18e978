"""The validation policy over real HTTP on loopback: each row answered on its own, flagged
rows scored and logged, refused rows logged too, and a request with nothing to score."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from keel.monitoring.log import PredictionLog
from keel.project import Project
from keel.serving import create_app
from tests.serving.helpers import (
    FEATURES,
    GOOD,
    auth,
    backend,
    churn_frame,
    create_key,
    fitted_model,
    over_http,
    write_config,
)


def rows_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The frame's feature columns as JSON-ready request instances."""
    return [
        {"tenure": int(r.tenure), "spend": float(r.spend), "visits": int(r.visits)}
        for r in frame.itertuples()
    ]


def send(project: Project, body: dict[str, Any]) -> httpx.Response:
    """POST ``body`` to /v1/predict of a server for ``project`` on loopback, then stop it
    (its shutdown flushes the prediction log)."""
    key = create_key(project)
    with over_http(create_app(project, model=backend())) as url:
        return httpx.post(f"{url}/v1/predict", json=body, headers=auth(key), timeout=60)


def logged(project: Project) -> pd.DataFrame:
    with PredictionLog.for_project(project) as log:
        return log.read()


@pytest.fixture
def configured(project_dir: Path) -> Iterator[Any]:
    """Opens the project with extra ``serving:`` settings."""
    opened: list[Project] = []

    def open_with(serving: str) -> Project:
        write_config(project_dir, "rate_limit: 1000/second\ntimeout_ms: 5000\n" + serving)
        opened.append(Project.open(project_dir))
        return opened[-1]

    yield open_with
    for project in opened:
        project.close()


def test_one_bad_row_in_a_batch_of_400_leaves_399_scored(project: Project) -> None:
    """A wrongly typed field refuses only its own row: the other 399 are scored by the model
    (the labels scikit-learn gives for them) and the bad row's slot carries its error."""
    frame = churn_frame(rows=400, seed=3)
    instances = rows_of(frame)
    instances[211]["tenure"] = "twelve"
    response = send(project, {"instances": instances})
    slots = response.json()["predictions"]
    expected = fitted_model()[0].predict(frame[FEATURES]).tolist()
    scored = [i for i, slot in enumerate(slots) if slot["prediction"] is not None]
    assert response.status_code == 200 and len(slots) == 400
    assert scored == [i for i in range(400) if i != 211]
    assert [slots[i]["label"] for i in scored] == [expected[i] for i in scored]
    assert slots[211]["errors"] == [
        {"field": "tenure", "check": "type", "msg": "must be an integer"}
    ]


def test_out_of_range_rows_are_answered_flagged_and_logged(project: Project) -> None:
    """With spend 1.5 times higher than in training, every row is scored; the rows outside
    the training range widened by 10% (counted here with pandas) carry a range finding in
    the response and in the prediction log."""
    train = churn_frame()  # what the served model was fitted on
    frame = churn_frame(rows=1000, seed=11)
    frame["spend"] = (frame["spend"] * 1.5).round(2)
    margin = (train[FEATURES].max() - train[FEATURES].min()) * 0.1
    low, high = train[FEATURES].min() - margin, train[FEATURES].max() + margin
    outside = ((frame[FEATURES] < low) | (frame[FEATURES] > high)).any(axis=1)
    response = send(project, {"instances": rows_of(frame)})
    slots = response.json()["predictions"]
    flagged = [i for i, slot in enumerate(slots) if slot.get("findings")]
    log = logged(project)
    assert response.status_code == 200 and all(s["prediction"] is not None for s in slots)
    assert 0 < outside.sum() < len(frame) and flagged == list(frame.index[outside])
    assert {f["check"] for i in flagged for f in slots[i]["findings"]} == {"range"}
    assert len(log) == 1000 and int(log["findings"].notna().sum()) == int(outside.sum())
    assert (log["route"] == "production").all()


def test_a_request_whose_every_row_is_refused_gets_422_and_is_logged(project: Project) -> None:
    """Nothing to score: 422 with a detail entry per bad field and a slot per row; the
    refused rows are in the prediction log with their findings, the bad value as missing."""
    instances = [{**GOOD, "tenure": "x"}, {**GOOD, "spend": None}, {**GOOD, "colour": "red"}]
    response = send(project, {"instances": instances})
    body = response.json()
    log = logged(project)
    assert response.status_code == 422
    assert [d["loc"] for d in body["detail"]] == [
        ["instances", 0, "tenure"],
        ["instances", 1, "spend"],
        ["instances", 2, "colour"],
    ]
    assert [slot["errors"][0]["field"] for slot in body["predictions"]] == [
        "tenure",
        "spend",
        "colour",
    ]
    assert len(log) == 3 and set(log["failure"]) == {"rejected"} and set(log["route"]) == {"policy"}
    assert log["input.tenure"].isna().tolist() == [True, False, False]
    assert log["findings"].notna().all()


def test_ranges_reject_still_refuses_out_of_range_rows(configured: Any) -> None:
    """``ranges: reject`` keeps the earlier behaviour for those who want it: 422."""
    project = configured("validation: {ranges: reject}")
    response = send(project, {"instance": {**GOOD, "visits": 10_000}})
    assert response.status_code == 422
    assert [d["loc"] for d in response.json()["detail"]] == [["instances", 0, "visits"]]


def test_ranges_fallback_sends_the_row_to_the_rule(configured: Any) -> None:
    """``ranges: fallback``: an out-of-range row is answered by the fallback rule, marked
    with its finding, and logged outside the model's own evidence (route policy)."""
    project = configured('validation: {ranges: fallback}\nfallback: [rule, none]\nrule: "7"')
    instances = [GOOD, {**GOOD, "visits": 10_000}]
    response = send(project, {"instances": instances})
    slots = response.json()["predictions"]
    log = logged(project)
    assert response.status_code == 200
    assert slots[0]["fallback"] is None and slots[1]["fallback"] == "rule"
    assert slots[1]["prediction"] == 7 and slots[1]["findings"][0]["check"] == "range"
    assert sorted(log["route"]) == ["policy", "production"]


def test_the_openapi_document_describes_the_refusal(project: Project) -> None:
    """/openapi.json documents the 422 body of a request with nothing to score: its per-row
    slots and its detail."""
    key = create_key(project, "predict", "admin")
    with over_http(create_app(project, model=backend())) as url:
        schema = httpx.get(f"{url}/openapi.json", headers=auth(key), timeout=30).json()
    refusal = schema["paths"]["/v1/predict"]["post"]["responses"]["422"]
    ref = refusal["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert {"error", "detail", "predictions"} <= set(
        schema["components"]["schemas"][ref]["properties"]
    )


def test_the_status_route_shows_the_policy_in_effect(configured: Any) -> None:
    """/v1/status shows the validation policy as the server applies it: the earlier
    ``ranges: ignore`` as flag, and the unknown-entity policy."""
    project = configured("validation: {ranges: ignore}\nunknown_entity: reject")
    key = create_key(project)
    with over_http(create_app(project, model=backend())) as url:
        status = httpx.get(f"{url}/v1/status", headers=auth(key), timeout=30).json()
    assert status["settings"]["validation"]["ranges"] == "flag"
    assert status["settings"]["unknown_entity"] == "reject"


def test_types_fallback_gives_the_rule_the_bad_value_as_missing(
    configured: Any, project_dir: Path
) -> None:
    """``types: fallback``: a wrongly typed row is answered by the rule, which sees the bad
    field as missing (never the string sent), and the slot names the finding."""
    (project_dir / "rules.py").write_text(
        "def seen(row):\n    return {'label': repr(row.get('tenure'))}\n"
    )
    project = configured("validation: {types: fallback}\nfallback: [rule, none]\nrule: rules:seen")
    response = send(project, {"instance": {**GOOD, "tenure": "twelve"}})
    slot = response.json()["predictions"][0]
    assert response.status_code == 200 and slot["fallback"] == "rule"
    assert slot["label"] == "None" and slot["model_version"] == "rule:rules:seen"
    assert slot["findings"] == [{"field": "tenure", "check": "type", "msg": "must be an integer"}]
