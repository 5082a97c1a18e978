"""How sure a metric measured on a few rows is: a confidence interval per metric.

The gate judges a slice by its interval, not its point estimate, so a slice of a handful
of positives is neither failed nor passed on noise. Intervals are analytic where a
standard one exists (Hanley & McNeil's for ROC AUC; Wilson's, through SciPy, for
accuracy, precision and recall) and otherwise a percentile bootstrap with a fixed seed,
resampling positives and negatives separately so every resample has both classes.
Pure functions of labels and scores.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["BOOTSTRAP_RESAMPLES", "BOOTSTRAP_SEED", "hanley_mcneil", "interval", "wilson"]

Array = np.ndarray[Any, Any]
Interval = tuple[float, float]
BOOTSTRAP_RESAMPLES = 200
BOOTSTRAP_SEED = 0


def interval(
    metric: str,
    value: float,
    y_true: Array,
    scores: Array,
    positive: Any,
    confidence: float,
    compute: Callable[[Array, Array], float | None],
) -> Interval | None:
    """A two-sided ``confidence`` interval for ``metric`` (whose value here is ``value``).

    ``positive`` is the binary positive class (None for many classes or regression);
    ``compute(y_true, scores)`` recomputes the metric on a resample.
    """
    hits = None if positive is None else np.asarray(y_true == positive)
    if metric == "roc_auc" and hits is not None:
        return hanley_mcneil(value, int(hits.sum()), int((~hits).sum()), confidence)
    counted = _proportion_base(metric, hits, scores, len(y_true))
    if counted is not None:
        return wilson(round(value * counted), counted, confidence)
    if scores.ndim == 1 and metric in _FAST:  # NumPy on each resample: no per-call overhead
        truth = (y_true if hits is None else hits).astype("float64")
        fast = _FAST[metric]
        return _bootstrap(truth, scores, hits, confidence, lambda y, s: fast(y, s))
    return _bootstrap(y_true, scores, hits, confidence, compute)


def hanley_mcneil(auc: float, positives: int, negatives: int, confidence: float) -> Interval:
    """Hanley & McNeil (1982): the standard error of an AUC from its class counts."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (
        auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)
    ) / (positives * negatives)
    half = _z(confidence) * math.sqrt(max(variance, 0.0))
    return max(0.0, auc - half), min(1.0, auc + half)


def wilson(successes: int, trials: int, confidence: float) -> Interval:
    """Wilson's score interval for a proportion (SciPy's)."""
    from scipy.stats import binomtest

    found = binomtest(successes, trials).proportion_ci(confidence, method="wilson")
    return float(found.low), float(found.high)


def _proportion_base(metric: str, hits: Array | None, scores: Array, rows: int) -> int | None:
    """How many rows a proportion metric is a share of, or None if it is not one."""
    if metric == "accuracy":
        return rows
    if hits is None:
        return None
    base = {"recall": int(hits.sum()), "precision": int((scores >= 0.5).sum())}.get(metric)
    return base or None


def _bootstrap(
    y_true: Array,
    scores: Array,
    hits: Array | None,
    confidence: float,
    compute: Callable[[Array, Array], float | None],
) -> Interval | None:
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    groups = (
        [np.arange(len(y_true))] if hits is None else [np.flatnonzero(hits), np.flatnonzero(~hits)]
    )
    values = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(BOOTSTRAP_RESAMPLES):
            rows = np.concatenate([rng.choice(group, len(group)) for group in groups])
            found = compute(y_true[rows], scores[rows])
            if found is not None:
                values.append(found)
    if not values:
        return None
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def _f1(y: Array, p: Array) -> float | None:
    predicted = p >= 0.5
    true_positives = float(np.sum(predicted & (y == 1)))
    denominator = float(np.sum(predicted) + np.sum(y == 1))
    return 2 * true_positives / denominator if denominator else 0.0


def _log_loss(y: Array, p: Array) -> float:
    q = np.clip(p, 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


def _r2(y: Array, p: Array) -> float | None:
    total = float(np.sum((y - y.mean()) ** 2))
    return 1 - float(np.sum((y - p) ** 2)) / total if total else None


# The same definitions as scikit-learn's (tests/training/test_bounds.py checks them),
# written for one resample at a time: sklearn's input checks cost a millisecond a call.
_FAST: dict[str, Callable[[Array, Array], float | None]] = {
    "f1": _f1,
    "brier": lambda y, p: float(np.mean((p - y) ** 2)),
    "log_loss": _log_loss,
    "mae": lambda y, p: float(np.mean(np.abs(y - p))),
    "rmse": lambda y, p: float(np.sqrt(np.mean((y - p) ** 2))),
    "r2": _r2,
}


def _z(confidence: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(1 - (1 - confidence) / 2))
