"""Honest answers over real HTTP on loopback: missing online features are named, an unknown
entity is handled as ``serving.unknown_entity`` says, and a rule answers in the model's
shape under its own name."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from keel.monitoring.log import PredictionLog
from keel.project import Project
from keel.serving import SklearnBackend, create_app
from keel.serving.fallback import rule_answer
from tests.serving.helpers import FEATURES, auth, churn_frame, create_key, over_http

VIEWS = """\
from keel.features import FeatureView

profile = FeatureView(
    name="profile", source="customers", entity="customer_id", timestamp="updated_at",
    features=("spend",), ttl="3650d",
)
activity = FeatureView(
    name="activity", source="customers", entity="customer_id", timestamp="updated_at",
    features=("visits",), ttl="3650d",
)
"""
RULE = "def churn_rule(row):\n    return {'label': 1, 'probability': 0.8}\n"


def nan_tolerant_model() -> tuple[Any, list[dict[str, Any]]]:
    """A gradient-boosting classifier (it scores missing values) and its input schema."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from keel.training.inputs import infer_schema

    frame = churn_frame()
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0)
    return model.fit(frame[FEATURES], frame["churned"]), infer_schema(frame[FEATURES])


def feature_project(root: Path, serving: str = "") -> Project:
    """A project whose 'spend' and 'visits' come from two feature views of the online store."""
    (root / "keel.yaml").write_text(
        "name: churn\nsources:\n  customers: {kind: csv, path: data/customers.csv}\n"
        "features: {module: features.py, online: sqlite}\n"
        "serving:\n  rate_limit: 1000/second\n  timeout_ms: 5000\n"
        + "".join(f"  {line}\n" for line in serving.splitlines())
    )
    (root / "features.py").write_text(VIEWS)
    (root / "rules.py").write_text(RULE)
    return Project.open(root)


def store_rows(project: Project, view: str, rows: dict[str, dict[str, Any]]) -> None:
    from keel.features import FeatureStore

    store = FeatureStore.open(project)
    try:
        store.online.write(view, [(k, datetime(2026, 1, 1), v) for k, v in rows.items()])
    finally:
        store.close()


def send(project: Project, instances: list[dict[str, Any]], model: Any = None) -> httpx.Response:
    """POST the instances to a server for ``project`` on loopback, then stop it."""
    fitted, schema = nan_tolerant_model()
    key = create_key(project)
    served = SklearnBackend(model or fitted, schema, "churn@1")
    with over_http(create_app(project, model=served)) as url:
        body = {"instances": instances}
        return httpx.post(f"{url}/v1/predict", json=body, headers=auth(key), timeout=60)


def logged(project: Project) -> pd.DataFrame:
    with PredictionLog.for_project(project) as log:
        return log.read()


def test_a_prediction_made_without_a_view_names_the_missing_features(project_dir: Path) -> None:
    """c1 has a profile row but no activity row: the model answers, and the response and
    the log say that 'visits' was missing."""
    with feature_project(project_dir) as project:
        store_rows(project, "profile", {"c1": {"spend": 55.5}})
        response = send(project, [{"customer_id": "c1", "tenure": 12}])
        log = logged(project)
    slot = response.json()["predictions"][0]
    assert response.status_code == 200 and slot["fallback"] is None
    assert slot["model_version"] == "churn@1" and slot["features_missing"] == ["visits"]
    assert json.loads(log["features_missing"][0]) == ["visits"]


def test_an_unknown_entity_goes_to_the_fallback_rule_by_default(project_dir: Path) -> None:
    """By default an entity the store has no row for is answered by the fallback chain: the
    rule's label and probability, the rule as the version, logged outside the model's
    evidence with why."""
    with feature_project(project_dir, "fallback: [rule, none]\nrule: rules:churn_rule") as project:
        store_rows(project, "profile", {"c1": {"spend": 55.5}})
        response = send(project, [{"customer_id": "c9", "tenure": 12}])
        log = logged(project)
    slot = response.json()["predictions"][0]
    assert response.status_code == 200 and slot["fallback"] == "rule"
    assert (slot["label"], slot["probability"]) == (1, 0.8)
    assert slot["model_version"] == "rule:rules:churn_rule" and "'c9'" in slot["reason"]
    assert sorted(slot["features_missing"]) == ["spend", "visits"]
    assert (log["route"][0], log["failure"][0], log["model_version"][0]) == (
        "policy",
        "unknown_entity",
        "rule:rules:churn_rule",
    )


def test_unknown_entity_reject_refuses_only_that_row(project_dir: Path) -> None:
    """``unknown_entity: reject``: the unknown customer's slot carries an entity error, the
    known customer beside it is scored, and both rows are logged."""
    with feature_project(project_dir, "unknown_entity: reject") as project:
        store_rows(project, "profile", {"c1": {"spend": 55.5}})
        store_rows(project, "activity", {"c1": {"visits": 3}})
        instances = [{"customer_id": "c1", "tenure": 12}, {"customer_id": "c9", "tenure": 12}]
        response = send(project, instances)
        log = logged(project)
    known, unknown = response.json()["predictions"]
    assert response.status_code == 200 and known["prediction"] is not None
    assert "features_missing" not in known
    assert unknown["prediction"] is None and unknown["errors"][0]["field"] == "customer_id"
    assert unknown["errors"][0]["check"] == "entity"
    assert list(log["failure"].fillna("-")) == ["-", "rejected"]


def test_unknown_entity_reject_alone_is_a_422(project_dir: Path) -> None:
    """A request whose only row names an unknown entity under ``reject`` has nothing to
    score: 422, with the entity named in the detail."""
    with feature_project(project_dir, "unknown_entity: reject") as project:
        store_rows(project, "profile", {"c1": {"spend": 55.5}})
        response = send(project, [{"customer_id": "c9", "tenure": 12}])
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["instances", 0, "customer_id"]


def test_unknown_entity_serve_scores_with_every_feature_missing(project_dir: Path) -> None:
    """``unknown_entity: serve``: the model scores the row with the stored features missing
    (the label scikit-learn gives for that row) and the response lists them."""
    with feature_project(project_dir, "unknown_entity: serve") as project:
        store_rows(project, "profile", {"c1": {"spend": 55.5}})
        response = send(project, [{"customer_id": "c9", "tenure": 12}])
    slot = response.json()["predictions"][0]
    model, _ = nan_tolerant_model()
    row = pd.DataFrame({"tenure": [12], "spend": [np.nan], "visits": [np.nan]})
    assert response.status_code == 200 and slot["fallback"] is None
    assert slot["label"] == int(model.predict(row)[0])
    assert sorted(slot["features_missing"]) == ["spend", "visits"]


def test_a_store_never_materialized_is_not_answered_as_if_it_were(project_dir: Path) -> None:
    """With nothing ever written online, a request does not get the all-missing score as a
    normal answer: it falls back (``none`` by default) and says the store has nothing."""
    with feature_project(project_dir) as project:
        response = send(project, [{"customer_id": "c1", "tenure": 12}])
    slot = response.json()["predictions"][0]
    assert response.status_code == 200 and slot["fallback"] == "none"
    assert slot["prediction"] is None and "not materialized" in slot["reason"]


def test_a_rule_answers_in_the_models_shape_under_its_own_name(project_dir: Path) -> None:
    """When the model fails, the rule's answer has the same fields as the model's answer,
    with its label and probability, and names the rule as its version, never the model."""
    from tests.serving.helpers import Switchable

    with feature_project(project_dir, "fallback: [rule, none]\nrule: rules:churn_rule") as project:
        store_rows(project, "profile", {"c1": {"spend": 55.5}})
        store_rows(project, "activity", {"c1": {"visits": 3}})
        fitted, schema = nan_tolerant_model()
        model = Switchable(fitted)
        key = create_key(project)
        served = SklearnBackend(model, schema, "churn@1")
        body = {"instance": {"customer_id": "c1", "tenure": 12}}
        with over_http(create_app(project, model=served)) as url:
            good = httpx.post(f"{url}/v1/predict", json=body, headers=auth(key), timeout=60)
            model.mode = "raise"
            ruled = httpx.post(f"{url}/v1/predict", json=body, headers=auth(key), timeout=60)
    by_model, by_rule = good.json()["predictions"][0], ruled.json()["predictions"][0]
    assert set(by_rule) == set(by_model) | {"reason"}
    assert (by_rule["prediction"], by_rule["label"], by_rule["probability"]) == (1, 1, 0.8)
    assert by_rule["model_version"] == "rule:rules:churn_rule" and by_rule["fallback"] == "rule"


@pytest.mark.parametrize(
    ("returned", "expected"),
    [
        ("maybe", ("maybe", None)),
        ({"label": 0, "probability": 0.25}, (0, 0.25)),
        ({"label": "yes"}, ("yes", None)),
    ],
)
def test_a_rule_returns_a_label_and_optionally_a_probability(
    returned: Any, expected: tuple[Any, float | None]
) -> None:
    """A plain value is the label; a mapping gives the label and the probability."""
    assert rule_answer(returned) == expected


@pytest.mark.parametrize("returned", [{"probability": 0.3}, {"label": 1, "probability": 1.7}])
def test_a_rule_answer_without_a_label_or_with_a_bad_probability_is_refused(
    returned: Any,
) -> None:
    """A mapping without a label, or a probability outside 0..1, is a failed rule (the chain
    moves on to its next step)."""
    with pytest.raises(ValueError):
        rule_answer(returned)
