"""What a version's metrics are computed from, and the metrics of those scores.

Shared by the gate's evidence (``keel.training.evaluate``) and its slices
(``keel.training.slice_evidence``), which both build on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from keel.training.artifact import predict_proba, predict_scores
from keel.training.classes import classes_from_bundle
from keel.training.metrics import classification_metrics, multiclass_metrics, regression_metrics

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["metric_scores", "metrics_of", "multiclass"]


def metric_scores(bundle: dict[str, Any], frame: pd.DataFrame) -> np.ndarray[Any, Any]:
    """What metrics are computed from: every class's probability for a many-class model,
    else ``predict_scores`` (the positive class's probability, or the prediction)."""
    if multiclass(bundle):
        return predict_proba(bundle, frame)
    return predict_scores(bundle, frame)


def multiclass(bundle: dict[str, Any]) -> bool:
    """Whether the bundle is a classifier without a positive class (more than two classes)."""
    return bundle["task"] == "classification" and bundle.get("positive") is None


def metrics_of(
    bundle: dict[str, Any],
    y_true: np.ndarray[Any, Any],
    scores: np.ndarray[Any, Any],
    names: list[str],
) -> dict[str, float | None]:
    """``names`` metrics of already computed ``scores`` (see ``metric_scores``)."""
    if multiclass(bundle):
        return multiclass_metrics(names, y_true, scores, classes_from_bundle(bundle).classes)
    if bundle["task"] == "classification":
        return classification_metrics(names, y_true, scores, bundle["positive"])
    return regression_metrics(names, y_true, scores)
