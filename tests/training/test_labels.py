"""XGBoost classifiers on labels that are not 0..k-1: fitted on codes, answering in labels."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from keel.training.estimators import build_estimator
from keel.training.labels import EncodedLabels, needs_encoded_labels

xgboost = pytest.importorskip("xgboost")


def _table(seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x": rng.normal(size=400), "plan": rng.choice(["a", "b"], 400)})
    frame["plan"] = frame["plan"].astype("category")
    labels = np.where(frame["x"] + rng.normal(0, 0.5, 400) > 0, "Yes", "No")
    return frame, pd.Series(labels, name="default")


def test_only_classifiers_that_refuse_labels_are_wrapped() -> None:
    """XGBoost's classifier is; its regressor and scikit-learn's classifiers are not."""
    assert needs_encoded_labels(xgboost.XGBClassifier())
    assert not needs_encoded_labels(xgboost.XGBRegressor())
    assert not needs_encoded_labels(LogisticRegression())


def test_an_xgboost_classifier_answers_in_the_table_s_labels() -> None:
    """Built from keel.yaml's path it takes `Yes`/`No` and a categorical column, and its
    probabilities are those of XGBoost fitted by hand on the labels' codes."""
    frame, labels = _table()
    model = build_estimator("xgboost.XGBClassifier", {"n_estimators": 20}, seed=3).fit(
        frame, labels
    )
    assert isinstance(model, EncodedLabels) and list(model.classes_) == ["No", "Yes"]
    by_hand = xgboost.XGBClassifier(n_estimators=20, random_state=3, enable_categorical=True)
    by_hand.fit(frame, (labels == "Yes").astype(int))
    np.testing.assert_allclose(model.predict_proba(frame), by_hand.predict_proba(frame))
    expected = np.where(by_hand.predict_proba(frame)[:, 1] > 0.5, "Yes", "No")
    assert (model.predict(frame) == expected).all()


def test_the_wrapped_model_survives_pickling() -> None:
    """The artifact is a pickle: loaded back, the model gives the same probabilities."""
    frame, labels = _table(1)
    model = build_estimator("xgboost.XGBClassifier", {"n_estimators": 10}, seed=0).fit(
        frame, labels
    )
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(loaded.predict_proba(frame), model.predict_proba(frame))
    assert list(loaded.classes_) == ["No", "Yes"]
