"""XGBoost and LightGBM end to end on ISLR's Default: string labels (`Yes`/`No`), a text
flag and missing values, trained from keel.yaml, gated, deployed, served over HTTP with
explanations, and run as a canary beside production.

The served probabilities are compared with the library's own ``predict_proba`` on a frame
pandas builds, and the ROC AUC of the served scores with scikit-learn's.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from .story import api_key, edit_config, init, predict, rdata, run, server

pytestmark = pytest.mark.slow

SEED = 11
TRAIN_ROWS = 8_000
SERVED_ROWS = 600
FEATURES = ["customer_id", "student", "balance", "income"]
MODELS = {
    "xgboost": ("xgboost.XGBClassifier", {"n_estimators": 60, "max_depth": 3, "n_jobs": 1}),
    "lightgbm": (
        "lightgbm.LGBMClassifier",
        {"n_estimators": 60, "num_leaves": 15, "n_jobs": 1, "verbose": -1},
    ),
}


@dataclass(frozen=True)
class Story:
    """What each command answered for one booster."""

    library: str
    root: Path
    later: pd.DataFrame
    first: dict[str, Any]
    again: dict[str, Any]
    served: pd.DataFrame
    explained: list[dict[str, Any]]
    canary: pd.DataFrame


def _table() -> pd.DataFrame:
    table = rdata("ISLR", "Default").sample(frac=1, random_state=SEED).reset_index(drop=True)
    table.insert(0, "customer_id", [f"d_{i:05d}" for i in range(len(table))])
    rng = np.random.default_rng(SEED)
    table.loc[rng.choice(len(table), 150, replace=False), "income"] = None
    table.loc[rng.choice(len(table), 90, replace=False), "student"] = None
    return table


@pytest.fixture(scope="module", params=sorted(MODELS))
def story(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Story:
    """init --from, the booster named in keel.yaml, train twice, deploy, serve, canary."""
    library = request.param
    pytest.importorskip(library)
    estimator, params = MODELS[library]
    tmp = tmp_path_factory.mktemp(library)
    table = _table()
    history, later = table.iloc[:TRAIN_ROWS], table.iloc[TRAIN_ROWS:].head(SERVED_ROWS)
    history.to_csv(tmp / "default.csv", index=False)
    root = tmp / "credit"
    init(root, tmp / "default.csv", "--target", "default", "--key", "customer_id")
    edit_config(root, {"training": {"model": {"estimator": estimator, "params": params}}})
    edit_config(root, {"serving": {"timeout_ms": 5000, "rate_limit": None}})
    edit_config(root, {"rollout": {"auto": False, "canary": {"steps": [50, 100]}}})
    run("ingest", root=root)
    first = run("train", root=root)
    again = run("train", root=root)
    run("deploy", "1", root=root)
    key = api_key(root)
    with server(root) as http:
        served = predict(http, key, later[FEATURES])
        explained = _explain(http, key, later[FEATURES].head(3))
    run("deploy", "2", "--canary", "--share", "50", "--reason", "same data, same seed", root=root)
    with server(root) as http:
        canary = predict(http, key, later[FEATURES])
    return Story(library, root, later, first, again, served, explained, canary)


def _explain(http: Any, key: str, rows: pd.DataFrame) -> list[dict[str, Any]]:
    records = rows.astype(object).where(rows.notna(), None).to_dict("records")
    body = {"instances": records, "explain": True}
    response = http.post("/v1/predict", json=body, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["predictions"]
    return found


def _model(story: Story, version: int) -> Any:
    """The served version's fitted model, unpickled from its artifact file."""
    digest = (
        story.first["version"]["artifact"] if version == 1 else story.again["version"]["artifact"]
    )
    path = story.root / ".keel" / "artifacts" / "sha256" / digest[:2] / digest
    return pickle.loads(path.read_bytes())["model"]


def test_the_booster_trains_on_string_labels_and_passes_its_gate(story: Story) -> None:
    """`Yes`/`No` labels, a text flag and missing values: trained and gated as any model."""
    assert story.first["gate"]["passed"] is True
    assert story.first["version"]["metrics"]["roc_auc"] > 0.9


def test_training_twice_on_the_same_data_gives_the_same_model(story: Story) -> None:
    """Same data, config and seed: the second version's artifact is byte for byte the
    first's (the same digest), and so are its metrics and its answers to the served rows."""
    assert story.again["version"]["artifact"] == story.first["version"]["artifact"]
    assert story.again["version"]["metrics"] == story.first["version"]["metrics"]
    frame = _frame(story.later)
    first, second = _model(story, 1), _model(story, 2)
    np.testing.assert_array_equal(first.predict_proba(frame), second.predict_proba(frame))


def _frame(rows: pd.DataFrame) -> pd.DataFrame:
    """The model's input as pandas gives it: the text flag as a categorical."""
    frame = rows[["student", "balance", "income"]].copy()
    frame["student"] = pd.Categorical(frame["student"], categories=["No", "Yes"])
    return frame


def test_served_answers_are_the_library_s_own_probabilities(story: Story) -> None:
    """Every served probability of `Yes` equals predict_proba of the library's model on
    the same rows, and each label is the class the probabilities favour."""
    model = _model(story, 1)
    classes = list(model.classes_)
    expected = model.predict_proba(_frame(story.later))[:, classes.index("Yes")]
    np.testing.assert_allclose(story.served["probability"].to_numpy(float), expected, atol=1e-6)
    favoured = np.where(expected >= 0.5, "Yes", "No")
    assert (story.served["prediction"].to_numpy() == favoured).mean() > 0.99


def test_served_scores_rank_defaults_as_well_as_training_promised(story: Story) -> None:
    """ROC AUC of the served scores against the true labels, by scikit-learn."""
    truth = (story.later["default"] == "Yes").to_numpy()
    auc = roc_auc_score(truth, story.served["probability"].to_numpy(float))
    assert auc > 0.9, auc


def test_explanations_name_the_model_s_features(story: Story) -> None:
    """Each explained answer lists features the model uses, largest move first; balance,
    the column that separates defaulters, leads."""
    for answer in story.explained:
        moves = answer["explanation"]
        assert {m["feature"] for m in moves} <= {"student", "balance", "income"}
        sizes = [abs(m["contribution"]) for m in moves]
        assert sizes == sorted(sizes, reverse=True)
        assert moves[0]["feature"] == "balance"


def test_the_canary_answers_its_share_of_customers(story: Story) -> None:
    """Version 2 as a 50% canary: each customer gets one version, and the split of 600
    customers is within four standard deviations of half."""
    versions = story.canary["model_version"].value_counts()
    name = story.canary["model_version"].iloc[0].split("@")[0]
    canary = int(versions.get(f"{name}@2", 0))
    assert set(versions.index) == {f"{name}@1", f"{name}@2"}
    assert abs(canary - SERVED_ROWS / 2) <= 4 * np.sqrt(SERVED_ROWS * 0.25)
