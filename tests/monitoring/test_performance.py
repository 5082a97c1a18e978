"""Performance with labels, and the confidence-based estimate before they come."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from keel.monitoring.performance import (
    ESTIMATE_ASSUMPTIONS,
    estimate_from_confidence,
    expected_auc,
    join_feedback,
    window_performance,
)


def _predictions(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 1, n)
    outcome = (rng.uniform(0, 1, n) < p).astype(int)  # calibrated by construction
    ids = [f"p{i}" for i in range(n)]
    return pd.DataFrame({"prediction_id": ids, "output.probability": p}), outcome


def test_feedback_join_counts_unknown_ids_and_keeps_the_last_duplicate() -> None:
    """Unknown ids are counted; a repeated id's last report wins; nothing is duplicated."""
    predictions, _ = _predictions(3, seed=0)
    feedback = pd.DataFrame({"prediction_id": ["p0", "p1", "p1", "nobody"], "label": [1, 0, 1, 0]})
    joined = join_feedback(predictions, feedback)
    assert (joined.unknown_ids, joined.duplicates) == (1, 1)
    assert len(joined.frame) == 3
    assert joined.frame.set_index("prediction_id")["label"].to_dict()["p1"] == 1


def test_mature_labelled_window_gets_realised_metrics() -> None:
    """With labels and maturity: accuracy, F1, AUC, Brier and a calibration table."""
    predictions, outcome = _predictions(2_000, seed=1)
    feedback = pd.DataFrame({"prediction_id": predictions["prediction_id"], "label": outcome})
    result = window_performance(join_feedback(predictions, feedback), score="output.probability")
    assert not result.estimated and result.labelled == 2_000
    assert 0.7 < result.metrics["roc_auc"] < 0.9
    assert all(abs(predicted - observed) < 0.1 for predicted, observed, _ in result.calibration)


def test_an_immature_window_is_estimated_and_says_so() -> None:
    """Before labels mature, a classifier's metrics are estimated with assumptions stated."""
    predictions, outcome = _predictions(4_000, seed=2)
    joined = join_feedback(predictions, pd.DataFrame({"prediction_id": [], "label": []}))
    estimate = window_performance(joined, score="output.probability", mature=False)
    feedback = pd.DataFrame({"prediction_id": predictions["prediction_id"], "label": outcome})
    real = window_performance(join_feedback(predictions, feedback), score="output.probability")
    assert estimate.estimated and estimate.assumptions == ESTIMATE_ASSUMPTIONS
    for name in ("accuracy", "roc_auc"):
        assert estimate.metrics[name] == pytest.approx(real.metrics[name], abs=0.03)


def testexpected_auc_matches_brute_force_with_ties() -> None:
    """The O(n log n) expected AUC equals the pairwise definition, ties counted half."""
    p = np.array([0.1, 0.4, 0.4, 0.8, 0.9, 0.4])
    num = den = 0.0
    for i in range(len(p)):
        for j in range(len(p)):
            if i != j:
                weight = p[i] * (1 - p[j])
                num += weight * (1.0 if p[i] > p[j] else 0.5 if p[i] == p[j] else 0.0)
                den += weight
    assert expected_auc(p) == pytest.approx(num / den)


def test_expected_accuracy_of_confident_scores() -> None:
    """Scores of 0.9 and 0.1 are each right 90% of the time if calibrated."""
    assert estimate_from_confidence(np.array([0.9, 0.1]))["accuracy"] == pytest.approx(0.9)


def test_regression_and_business_metrics_side_by_side() -> None:
    """MAE/RMSE for a regressor, beside the sum of a declared business outcome."""
    predictions = pd.DataFrame({"prediction_id": ["a", "b"], "output": [1.0, 3.0]})
    feedback = pd.DataFrame({"prediction_id": ["a", "b"], "label": [2.0, 3.0], "value": [5.0, 7.0]})
    result = window_performance(
        join_feedback(predictions, feedback),
        score="output",
        kind="regression",
        business=[("revenue", "value", "sum")],
    )
    assert result.metrics == {"mae": 0.5, "rmse": pytest.approx(np.sqrt(0.5))}
    assert result.business == {"revenue": 12.0}
