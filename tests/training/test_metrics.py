"""Held-out metrics and calibration: undefined metrics are None, not crashes."""

from __future__ import annotations

import numpy as np
import pytest

from keel.training.metrics import calibration_summary, classification_metrics, regression_metrics


def test_perfect_scores() -> None:
    """Scores that rank perfectly give ROC AUC 1 and accuracy 1."""
    y = np.array([0, 0, 1, 1])
    metrics = classification_metrics(["roc_auc", "accuracy"], y, np.array([0.1, 0.2, 0.8, 0.9]), 1)
    assert metrics == {"roc_auc": 1.0, "accuracy": 1.0}


def test_one_class_makes_roc_auc_undefined() -> None:
    """With only one class present ROC AUC is None while accuracy is still computed."""
    y = np.array([1, 1, 1])
    metrics = classification_metrics(["roc_auc", "accuracy"], y, np.array([0.9, 0.8, 0.3]), 1)
    assert metrics["roc_auc"] is None
    assert metrics["accuracy"] == pytest.approx(2 / 3, abs=1e-6)


def test_regression_metrics() -> None:
    """MAE and RMSE of a constant error of 1 are both 1."""
    metrics = regression_metrics(["mae", "rmse"], np.array([1.0, 2.0]), np.array([2.0, 3.0]))
    assert metrics == {"mae": 1.0, "rmse": 1.0}


def test_calibration_bins_cover_every_row() -> None:
    """The calibration bins count every row once and report an ECE in [0, 1]."""
    rng = np.random.default_rng(0)
    proba = rng.random(500)
    y = (rng.random(500) < proba).astype(int)
    summary = calibration_summary(y, proba, 1)
    assert sum(row["rows"] for row in summary["bins"]) == 500
    assert 0 <= summary["ece"] <= 1
