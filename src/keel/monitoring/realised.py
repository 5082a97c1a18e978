"""Realised metrics from labels and the logged scores, each with a confidence interval.

Pure functions. The intervals are percentile bootstraps with a fixed seed (the same rows
give the same interval): each resample is a vector of multiplicities passed to
scikit-learn as ``sample_weight``, so ranking metrics keep their exact definitions, and a
resample in which a metric is undefined (one class only) is skipped rather than guessed.
Hand-written instead of ``scipy.stats.bootstrap`` for that skip.

A metric that cannot be computed is left out and a note says why, in one sentence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "RESAMPLES",
    "Metrics",
    "binary_metrics",
    "calibration_table",
    "expected_calibration_error",
    "multiclass_metrics",
    "regression_metrics",
]

RESAMPLES = 200
SEED = 0
_EPS = 1e-15

Array = np.ndarray[Any, Any]
Metric = Callable[[Array], float]
"""A metric of the rows weighted by a vector of multiplicities."""


@dataclass(frozen=True)
class Metrics:
    """Metric values, their 95% intervals, and why any metric is missing."""

    values: Mapping[str, float]
    intervals: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def binary_metrics(
    y: Array, p: Array | None, predicted: Array, positive: Any = 1, negative: Any = 0
) -> Metrics:
    """ROC AUC, PR AUC, log loss, Brier and calibration error from the positive-class
    probabilities ``p`` (when logged), accuracy and F1 from the served labels."""
    y, predicted = y.astype(bool), predicted.astype(bool)
    hit = (y == predicted).astype(float)
    metrics: dict[str, Metric] = {
        "accuracy": lambda w: float(np.average(hit, weights=w)),
        "f1": lambda w: _f1(y, predicted, w),
    }
    notes: list[str] = []
    if p is None:
        notes.append(
            "roc_auc, pr_auc, log_loss and brier need probabilities, and none are logged "
            "(a model without predict_proba): accuracy and f1 are from the served labels"
        )
    else:
        metrics |= _probability_metrics(y, np.clip(p.astype(float), 0.0, 1.0))
        if len(np.unique(y)) < 2:
            only = positive if y[0] else negative
            notes.append(
                f"roc_auc and pr_auc are undefined: every labelled row is {only!r}; "
                "they need both classes in the window"
            )
            metrics.pop("roc_auc"), metrics.pop("pr_auc")
    return _with_intervals(metrics, len(y), tuple(notes))


def _f1(y: Array, predicted: Array, w: Array) -> float:
    tp, fp, fn = w[y & predicted].sum(), w[~y & predicted].sum(), w[y & ~predicted].sum()
    return float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else 0.0


def _probability_metrics(y: Array, p: Array) -> dict[str, Metric]:
    ranked = _Ranked(y, p)
    losses = -np.log(np.clip(np.where(y, p, 1 - p), _EPS, 1.0))
    squared = (p - y) ** 2
    return {
        "roc_auc": ranked.roc_auc,
        "pr_auc": ranked.average_precision,
        "log_loss": lambda w: float(np.average(losses, weights=w)),
        "brier": lambda w: float(np.average(squared, weights=w)),
        "ece": lambda w: expected_calibration_error(y, p, w),
    }


def multiclass_metrics(y: Array, proba: Array | None, predicted: Array) -> Metrics:
    """Accuracy and macro F1 from the served labels; log loss from the logged class
    probabilities (``proba[i, c]``; NaN where only the top classes were logged: the mass
    left over is shared evenly among the classes not logged)."""
    hit = (y == predicted).astype(float)
    present = np.union1d(y, predicted)  # scikit-learn's macro average is over these
    size = int(present.max()) + 1

    def f1_macro(w: Array) -> float:
        tp = np.bincount(y, weights=w * hit, minlength=size)[present]
        sums = (np.bincount(y, w, size) + np.bincount(predicted, w, size))[present]
        return float(np.mean(np.divide(2 * tp, sums, out=np.zeros(len(tp)), where=sums > 0)))

    metrics: dict[str, Metric] = {
        "accuracy": lambda w: float(np.average(hit, weights=w)),
        "f1_macro": f1_macro,
    }
    notes: tuple[str, ...] = ()
    if proba is None:
        notes = ("log_loss needs the class probabilities, and the log has none",)
    else:
        losses = -np.log(np.clip(_true_class_probability(y, proba), _EPS, 1.0))
        metrics["log_loss"] = lambda w: float(np.average(losses, weights=w))
    return _with_intervals(metrics, len(y), notes)


def _true_class_probability(y: Array, proba: Array) -> Array:
    found = proba[np.arange(len(y)), y]
    logged = np.nan_to_num(proba).sum(axis=1)
    unlogged = np.maximum(np.isnan(proba).sum(axis=1), 1)
    return np.where(np.isnan(found), np.maximum(1 - logged, 0) / unlogged, found)


def regression_metrics(y: Array, predicted: Array) -> Metrics:
    """MAE, RMSE and R² of the served values."""
    error = predicted.astype(float) - y.astype(float)
    y = y.astype(float)

    def r2(w: Array) -> float:
        spread = np.average((y - np.average(y, weights=w)) ** 2, weights=w)
        return float(1 - np.average(error**2, weights=w) / spread) if spread > 0 else np.nan

    metrics: dict[str, Metric] = {
        "mae": lambda w: float(np.average(np.abs(error), weights=w)),
        "rmse": lambda w: float(np.sqrt(np.average(error**2, weights=w))),
        "r2": r2,
    }
    notes = () if np.ptp(y) > 0 else ("r2 is undefined: every label in the window is equal",)
    return _with_intervals(metrics, len(y), notes)


def expected_calibration_error(
    y: Array, p: Array, weights: Array | None = None, bins: int = 10
) -> float:
    """Mean |observed rate - mean probability| over ten equal-width bins, weighted by rows."""
    w = np.ones(len(p)) if weights is None else weights.astype(float)
    index = np.minimum((p * bins).astype(int), bins - 1)
    count = np.bincount(index, weights=w, minlength=bins)
    gap = np.bincount(index, weights=w * (y.astype(float) - p), minlength=bins)
    return float(np.abs(gap).sum() / count.sum())


def calibration_table(y: Array, p: Array, bins: int = 10) -> tuple[tuple[float, float, int], ...]:
    """Per probability bin: mean predicted probability, observed rate, count."""
    index = np.minimum((p * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        members = index == b
        if members.any():
            out.append((float(p[members].mean()), float(y[members].mean()), int(members.sum())))
    return tuple(out)


class _Ranked:
    """Rows grouped by distinct score, highest first: any weighting of them then gives
    ROC AUC and average precision in linear time, as scikit-learn defines them (ties
    count half in AUC; one precision per distinct threshold), NaN with one class only."""

    def __init__(self, y: Array, p: Array) -> None:
        _, self.group = np.unique(-p, return_inverse=True)
        self.size = int(self.group.max()) + 1 if len(p) else 0
        self.y = y.astype(float)

    def _counts(self, w: Array) -> tuple[Array, Array]:
        pos = np.bincount(self.group, weights=w * self.y, minlength=self.size)
        neg = np.bincount(self.group, weights=w * (1 - self.y), minlength=self.size)
        return pos, neg

    def roc_auc(self, w: Array) -> float:
        pos, neg = self._counts(w)
        total_pos, total_neg = pos.sum(), neg.sum()
        if total_pos <= 0 or total_neg <= 0:
            return np.nan
        below = total_neg - np.cumsum(neg)
        return float((pos * (below + 0.5 * neg)).sum() / (total_pos * total_neg))

    def average_precision(self, w: Array) -> float:
        pos, neg = self._counts(w)
        if pos.sum() <= 0 or neg.sum() <= 0:
            return np.nan
        tp, called = np.cumsum(pos), np.cumsum(pos + neg)
        precision = np.divide(tp, called, out=np.zeros(len(tp)), where=called > 0)
        return float((pos / pos.sum() * precision).sum())


def _with_intervals(metrics: dict[str, Metric], n: int, notes: tuple[str, ...]) -> Metrics:
    ones = np.ones(n)
    values = {name: metric(ones) for name, metric in metrics.items()}
    rng = np.random.default_rng(SEED)
    draws: dict[str, list[float]] = {name: [] for name in metrics}
    for _ in range(RESAMPLES):
        weights = np.bincount(rng.integers(0, n, n), minlength=n).astype(float)
        for name, metric in metrics.items():
            draws[name].append(metric(weights))
    intervals = {name: _percentiles(draws[name]) for name in metrics}
    kept = {name: value for name, value in values.items() if value == value}
    return Metrics(kept, {name: intervals[name] for name in kept}, notes)


def _percentiles(draws: list[float]) -> tuple[float, float]:
    finite = np.asarray(draws)[np.isfinite(draws)]
    if not len(finite):
        return (np.nan, np.nan)
    low, high = np.percentile(finite, [2.5, 97.5])
    return (float(low), float(high))
