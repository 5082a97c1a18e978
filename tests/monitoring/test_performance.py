"""Performance with labels, and the confidence-based estimate before they come (pure)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

from keel.monitoring.performance import (
    ESTIMATE_ASSUMPTIONS,
    HARD_SCORES,
    NO_PROBABILITIES,
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
    return pd.DataFrame({"prediction_id": ids, "score": p}), outcome


def _labelled(predictions: pd.DataFrame, labels: object) -> pd.DataFrame:
    return pd.DataFrame({"prediction_id": predictions["prediction_id"], "label": labels})


def test_feedback_join_counts_unknown_ids_and_keeps_the_last_duplicate() -> None:
    """Unknown ids are counted; a repeated id's last report wins; nothing is duplicated."""
    predictions, _ = _predictions(3, seed=0)
    feedback = pd.DataFrame({"prediction_id": ["p0", "p1", "p1", "nobody"], "label": [1, 0, 1, 0]})
    joined = join_feedback(predictions, feedback)
    assert (joined.unknown_ids, joined.duplicates) == (1, 1)
    assert len(joined.frame) == 3
    assert joined.frame.set_index("prediction_id")["label"].to_dict()["p1"] == 1


def test_realised_ranking_metrics_equal_scikit_learns() -> None:
    """ROC AUC, PR AUC and log loss of a labelled window equal scikit-learn's."""
    predictions, outcome = _predictions(2_000, seed=1)
    result = window_performance(join_feedback(predictions, _labelled(predictions, outcome)))
    p = predictions["score"].to_numpy()
    assert not result.estimated and result.labelled == 2_000
    assert result.metrics["roc_auc"] == pytest.approx(roc_auc_score(outcome, p))
    assert result.metrics["pr_auc"] == pytest.approx(average_precision_score(outcome, p))
    assert result.metrics["log_loss"] == pytest.approx(log_loss(outcome, p))


def test_tied_scores_give_scikit_learns_auc_and_average_precision() -> None:
    """Scores rounded to one decimal (many ties): AUC and PR AUC still equal sklearn's."""
    predictions, outcome = _predictions(1_000, seed=8)
    predictions["score"] = predictions["score"].round(1)
    result = window_performance(join_feedback(predictions, _labelled(predictions, outcome)))
    p = predictions["score"].to_numpy()
    assert result.metrics["roc_auc"] == pytest.approx(roc_auc_score(outcome, p))
    assert result.metrics["pr_auc"] == pytest.approx(average_precision_score(outcome, p))


def test_the_auc_interval_is_as_wide_as_hanley_and_mcneil_say() -> None:
    """The bootstrap 95% interval of ROC AUC has the width of the analytic one."""
    predictions, outcome = _predictions(2_000, seed=3)
    result = window_performance(join_feedback(predictions, _labelled(predictions, outcome)))
    auc = roc_auc_score(outcome, predictions["score"])
    pos, neg = outcome.sum(), len(outcome) - outcome.sum()
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    se = np.sqrt(auc * (1 - auc) + (pos - 1) * (q1 - auc**2) + (neg - 1) * (q2 - auc**2))
    width = 2 * norm.ppf(0.975) * se / np.sqrt(pos * neg)
    low, high = result.intervals["roc_auc"]
    assert low < auc < high
    assert high - low == pytest.approx(width, rel=0.25)


def test_string_labels_match_the_models_classes_and_the_last_is_positive() -> None:
    """'Yes'/'No' labels with classes (No, Yes): the score is P(Yes) and AUC is right."""
    predictions, outcome = _predictions(500, seed=4)
    labels = np.where(outcome == 1, "Yes", "No")
    joined = join_feedback(predictions, _labelled(predictions, labels))
    result = window_performance(joined, classes=["No", "Yes"])
    assert result.positive == "Yes"
    assert result.metrics["roc_auc"] == pytest.approx(roc_auc_score(outcome, predictions["score"]))


def test_a_window_of_one_class_says_auc_is_undefined() -> None:
    """Every label negative: no AUC and a sentence saying why; the rest still computed."""
    predictions, _ = _predictions(200, seed=5)
    joined = join_feedback(predictions, _labelled(predictions, [0] * 200))
    result = window_performance(joined)
    assert "roc_auc" not in result.metrics and "pr_auc" not in result.metrics
    assert any("undefined" in note and "0" in note for note in result.notes)
    expected = np.mean(predictions["score"] < 0.5)
    assert result.metrics["accuracy"] == pytest.approx(expected)


def test_labels_of_another_type_are_counted_as_unmatched() -> None:
    """Labels that are none of the classes are counted, shown, and left out."""
    predictions, outcome = _predictions(100, seed=6)
    labels = ["n/a" if i < 10 else str(v) for i, v in enumerate(outcome)]
    result = window_performance(join_feedback(predictions, _labelled(predictions, labels)),
                                classes=[0, 1])  # fmt: skip
    assert (result.unmatched, result.unmatched_examples, result.labelled) == (10, ("n/a",), 90)


def test_an_immature_window_is_estimated_and_says_so() -> None:
    """Before labels mature, metrics are estimated from the probabilities, within 0.03 of
    what the labels later show on calibrated data."""
    predictions, outcome = _predictions(4_000, seed=2)
    joined = join_feedback(predictions, pd.DataFrame({"prediction_id": [], "label": []}))
    estimate = window_performance(joined, mature=False, classes=[0, 1])
    real_auc = roc_auc_score(outcome, predictions["score"])
    real_accuracy = np.mean((predictions["score"] >= 0.5) == outcome)
    assert estimate.estimated and estimate.assumptions == ESTIMATE_ASSUMPTIONS
    assert estimate.metrics["roc_auc"] == pytest.approx(real_auc, abs=0.03)
    assert estimate.metrics["accuracy"] == pytest.approx(real_accuracy, abs=0.03)


def test_no_estimate_without_probabilities() -> None:
    """A model without predict_proba: the logged score is a label, so no estimate."""
    predictions, _ = _predictions(100, seed=7)
    joined = join_feedback(predictions, pd.DataFrame({"prediction_id": [], "label": []}))
    result = window_performance(joined, mature=False, classes=[0, 1], probabilities=False)
    assert not result.estimated and result.metrics == {} and result.notes == (NO_PROBABILITIES,)


def test_expected_auc_matches_brute_force_with_ties() -> None:
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
    """MAE/RMSE/R2 for a regressor, beside the sum of a declared business outcome."""
    predictions = pd.DataFrame({"prediction_id": ["a", "b", "c"], "score": [1.0, 3.0, 2.0]})
    feedback = pd.DataFrame(
        {"prediction_id": ["a", "b", "c"], "label": ["2", "3", "4"], "value": [5.0, 7.0, 1.0]}
    )
    result = window_performance(
        join_feedback(predictions, feedback),
        kind="regression",
        business=[("revenue", "value", "sum")],
    )
    assert result.metrics["mae"] == pytest.approx(1.0)
    assert result.metrics["rmse"] == pytest.approx(np.sqrt(5 / 3))
    assert result.metrics["r2"] == pytest.approx(1 - 5 / 2)
    assert result.business == {"revenue": 13.0}


def test_a_score_of_hard_labels_is_not_taken_for_a_probability() -> None:
    """--score pointed at the 0/1 served label: no estimate (it would say AUC 1) and, with
    labels, no AUC; accuracy still comes from the served labels."""
    predictions, outcome = _predictions(300, seed=9)
    predictions["score"] = (predictions["score"] >= 0.5).astype(float)
    empty = pd.DataFrame({"prediction_id": [], "label": []})
    before = window_performance(join_feedback(predictions, empty), mature=False)
    after = window_performance(join_feedback(predictions, _labelled(predictions, outcome)))
    assert not before.estimated and before.notes == (HARD_SCORES,)
    assert "roc_auc" not in after.metrics
    assert after.metrics["accuracy"] == pytest.approx(np.mean(predictions["score"] == outcome))
