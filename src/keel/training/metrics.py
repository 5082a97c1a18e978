"""Held-out metrics and a calibration summary, as pure functions of labels and scores.

A metric that is undefined on the held-out rows (ROC AUC when only one class is present)
is ``None``, never a crash and never a made-up number: the gate then fails that check
with the reason.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "CLASSIFICATION_METRICS",
    "REGRESSION_METRICS",
    "calibration_summary",
    "classification_metrics",
    "multiclass_metrics",
    "regression_metrics",
]

Array = np.ndarray[Any, Any]
CLASSIFICATION_METRICS = (
    "roc_auc",
    "average_precision",
    "accuracy",
    "log_loss",
    "brier",
    "precision",
    "recall",
    "f1",
)
REGRESSION_METRICS = ("mae", "rmse", "r2")
_NEEDS_BOTH_CLASSES = {"roc_auc", "average_precision"}


def classification_metrics(
    names: Sequence[str], y_true: Array, proba: Array, positive: Any
) -> dict[str, float | None]:
    """Binary metrics of positive-class probabilities ``proba`` against ``y_true``."""
    hits = (y_true == positive).astype(int)
    predicted = (proba >= 0.5).astype(int)
    both = len(np.unique(hits)) == 2
    out: dict[str, float | None] = {}
    for name in names:
        if name in _NEEDS_BOTH_CLASSES and not both:
            out[name] = None
        elif name in _CLASSIFIERS:
            out[name] = _quiet(_CLASSIFIERS[name], hits, proba, predicted)
    return out


def multiclass_metrics(
    names: Sequence[str], y_true: Array, proba: Array, classes: Sequence[Any]
) -> dict[str, float | None]:
    """Metrics of a many-class model: one probability column per class, in ``classes`` order.

    Precision, recall, F1, ROC AUC and average precision are macro averages over the
    classes (one class against the rest); the ranking metrics need every class present.
    """
    labels = np.asarray(classes)
    predicted = labels[proba.argmax(axis=1)]
    onehot = (np.asarray(y_true)[:, None] == labels[None, :]).astype(int)
    every = bool(onehot.sum(axis=0).all())
    out: dict[str, float | None] = {}
    for name in names:
        if name in _NEEDS_BOTH_CLASSES and not every:
            out[name] = None
        elif name in _MULTICLASS:
            out[name] = _quiet(_MULTICLASS[name], y_true, proba, predicted, onehot, labels)
    return out


def regression_metrics(
    names: Sequence[str], y_true: Array, y_pred: Array
) -> dict[str, float | None]:
    """Error metrics of predictions ``y_pred`` against ``y_true``."""
    return {
        name: _quiet(_REGRESSORS[name], y_true, y_pred) for name in names if name in _REGRESSORS
    }


def calibration_summary(
    y_true: Array, proba: Array, positive: Any, bins: int = 10
) -> dict[str, Any]:
    """Per probability bin: rows, mean predicted and observed rate; plus ECE and Brier."""
    hits = (y_true == positive).astype(float)
    which = np.minimum((proba * bins).astype(int), bins - 1)
    rows, ece = [], 0.0
    for index in range(bins):
        mask = which == index
        if mask.any():
            predicted, observed = float(proba[mask].mean()), float(hits[mask].mean())
            ece += mask.mean() * abs(predicted - observed)
            rows.append(
                {
                    "bin": index,
                    "rows": int(mask.sum()),
                    "predicted": predicted,
                    "observed": observed,
                }
            )
    brier = float(np.mean((proba - hits) ** 2)) if len(hits) else None
    return {"bins": rows, "ece": round(float(ece), 6), "brier": brier}


def _quiet(compute: Callable[..., float], *args: Array) -> float | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = float(compute(*args))
        except ValueError:
            return None
    return None if np.isnan(value) else round(value, 6)


def _macro(name: str, y_true: Array, predicted: Array, labels: Array) -> float:
    return _sk(name)(y_true, predicted, labels=labels, average="macro", zero_division=0)


def _sk(name: str) -> Callable[..., float]:
    from sklearn import metrics

    function: Callable[..., float] = getattr(metrics, name)
    return function


_CLASSIFIERS: dict[str, Callable[[Array, Array, Array], float]] = {
    "roc_auc": lambda y, p, _: _sk("roc_auc_score")(y, p),
    "average_precision": lambda y, p, _: _sk("average_precision_score")(y, p),
    "accuracy": lambda y, _, c: _sk("accuracy_score")(y, c),
    "log_loss": lambda y, p, _: _sk("log_loss")(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1]),
    "brier": lambda y, p, _: float(np.mean((p - y) ** 2)),
    "precision": lambda y, _, c: _sk("precision_score")(y, c, zero_division=0),
    "recall": lambda y, _, c: _sk("recall_score")(y, c, zero_division=0),
    "f1": lambda y, _, c: _sk("f1_score")(y, c, zero_division=0),
}
_MULTICLASS: dict[str, Callable[[Array, Array, Array, Array, Array], float]] = {
    "roc_auc": lambda y, p, c, h, k: _sk("roc_auc_score")(h, p, average="macro"),
    "average_precision": lambda y, p, c, h, k: _sk("average_precision_score")(h, p),
    "accuracy": lambda y, p, c, h, k: float(np.mean(c == y)),
    "log_loss": lambda y, p, c, h, k: _sk("log_loss")(y, np.clip(p, 1e-15, 1), labels=k),
    "brier": lambda y, p, c, h, k: float(np.mean(np.sum((p - h) ** 2, axis=1))),
    "precision": lambda y, p, c, h, k: _macro("precision_score", y, c, k),
    "recall": lambda y, p, c, h, k: _macro("recall_score", y, c, k),
    "f1": lambda y, p, c, h, k: _macro("f1_score", y, c, k),
}
_REGRESSORS: dict[str, Callable[[Array, Array], float]] = {
    "mae": lambda y, p: _sk("mean_absolute_error")(y, p),
    "rmse": lambda y, p: float(np.sqrt(np.mean((np.asarray(y) - p) ** 2))),
    "r2": lambda y, p: _sk("r2_score")(y, p),
}
