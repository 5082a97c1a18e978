"""Model performance per window, from labels when they have come, estimated before.

Pure functions. ``join_feedback`` matches ground truth to logged predictions by id
(later reports for an id replace earlier ones; ids the log does not know are counted,
not dropped silently). ``window_performance`` gives the realised metrics of a window
whose labels have matured, and until then, for a classifier, an estimate from the
model's own probabilities whose assumptions it states.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ESTIMATE_ASSUMPTIONS",
    "Joined",
    "Performance",
    "calibration",
    "classification_metrics",
    "estimate_from_confidence",
    "expected_auc",
    "join_feedback",
    "regression_metrics",
    "window_performance",
]

ESTIMATE_ASSUMPTIONS = (
    "estimated from the model's own probabilities: assumes they are calibrated and that "
    "only the inputs shifted, not how outcomes follow from them (no concept drift)"
)


@dataclass(frozen=True)
class Joined:
    """Predictions with their labels, and what could not be matched."""

    frame: pd.DataFrame
    unknown_ids: int
    duplicates: int


@dataclass(frozen=True)
class Performance:
    """One window's performance: realised, or estimated before labels mature."""

    kind: Literal["classification", "regression"]
    rows: int
    labelled: int
    mature: bool
    estimated: bool
    metrics: Mapping[str, float]
    business: Mapping[str, float] = field(default_factory=dict)
    calibration: tuple[tuple[float, float, int], ...] = ()
    assumptions: str | None = None


def join_feedback(predictions: pd.DataFrame, feedback: pd.DataFrame) -> Joined:
    """Left-join feedback (prediction_id, label[, value]) onto predictions by id."""
    duplicates = int(feedback["prediction_id"].duplicated().sum())
    latest = feedback.drop_duplicates("prediction_id", keep="last")
    known = latest["prediction_id"].isin(predictions["prediction_id"])
    frame = predictions.merge(latest, on="prediction_id", how="left")
    return Joined(frame, unknown_ids=int((~known).sum()), duplicates=duplicates)


def classification_metrics(
    labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5
) -> dict[str, float]:
    """Accuracy, F1, ROC AUC (when both classes occur) and Brier score."""
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    y, p = labels.astype(int), scores.astype(float)
    predicted = (p >= threshold).astype(int)
    metrics = {
        "accuracy": float(accuracy_score(y, predicted)),
        "f1": float(f1_score(y, predicted, zero_division=0)),
        "brier": float(np.mean((p - y) ** 2)),
    }
    if len(np.unique(y)) == 2:
        metrics["roc_auc"] = float(roc_auc_score(y, p))
    return metrics


def regression_metrics(labels: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """Mean absolute error and root mean squared error."""
    error = predictions.astype(float) - labels.astype(float)
    return {"mae": float(np.mean(np.abs(error))), "rmse": float(np.sqrt(np.mean(error**2)))}


def calibration(
    labels: np.ndarray, scores: np.ndarray, bins: int = 10
) -> tuple[tuple[float, float, int], ...]:
    """Per probability bin: mean predicted probability, observed rate, count."""
    index = np.minimum((scores * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        members = index == b
        if members.any():
            out.append(
                (float(scores[members].mean()), float(labels[members].mean()), int(members.sum()))
            )
    return tuple(out)


def estimate_from_confidence(scores: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Expected accuracy, F1 and ROC AUC if each score is the true probability of class 1."""
    p = np.clip(scores.astype(float), 0.0, 1.0)
    positive = p >= threshold
    accuracy = float(np.mean(np.where(positive, p, 1 - p)))
    tp, fp, fn = p[positive].sum(), (1 - p[positive]).sum(), p[~positive].sum()
    f1 = float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else 0.0
    return {"accuracy": accuracy, "f1": f1, "roc_auc": expected_auc(p)}


def expected_auc(p: np.ndarray) -> float:
    """E[AUC] = sum over pairs i > j in score of p_i (1 - p_j), normalised; ties count half."""
    order = np.argsort(p, kind="stable")
    sorted_p = p[order]
    negatives_below = np.concatenate([[0.0], np.cumsum(1 - sorted_p)[:-1]])
    _, first, counts = np.unique(sorted_p, return_index=True, return_counts=True)
    tie_negatives = np.repeat(
        np.add.reduceat(1 - sorted_p, first) if len(first) else [], counts
    ) - (1 - sorted_p)
    start_of_tie = np.repeat(negatives_below[first], counts)
    pairs = sorted_p * (start_of_tie + 0.5 * tie_negatives)
    denominator = p.sum() * (1 - p).sum() - float(np.sum(p * (1 - p)))
    return float(pairs.sum() / denominator) if denominator > 0 else float("nan")


def window_performance(
    joined: Joined,
    *,
    score: str,
    label: str = "label",
    kind: Literal["classification", "regression"] = "classification",
    mature: bool = True,
    business: Sequence[tuple[str, str, str]] = (),
) -> Performance:
    """Realised metrics when the window is mature and labelled, else (for a classifier)
    the confidence-based estimate; business metrics are (name, column, sum|mean|count)."""
    frame = joined.frame
    labelled = frame[frame[label].notna()] if label in frame else frame.iloc[:0]
    values = _business(labelled, business)
    if mature and len(labelled):
        y, s = labelled[label].to_numpy(), labelled[score].to_numpy(dtype=float)
        if kind == "regression":
            return Performance(kind, len(frame), len(labelled), True, False,
                               regression_metrics(y.astype(float), s), values)  # fmt: skip
        metrics = classification_metrics(y.astype(int), s)
        return Performance(kind, len(frame), len(labelled), True, False, metrics, values,
                           calibration(y.astype(float), s))  # fmt: skip
    if kind == "regression":
        return Performance(kind, len(frame), len(labelled), mature, False, {}, values)
    estimate = estimate_from_confidence(frame[score].to_numpy(dtype=float))
    return Performance(kind, len(frame), len(labelled), mature, True, estimate, values,
                       assumptions=ESTIMATE_ASSUMPTIONS)  # fmt: skip


def _business(frame: pd.DataFrame, specs: Sequence[tuple[str, str, str]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, column, agg in specs:
        values: Any = frame[column] if column in frame else frame.iloc[:0, :0]
        out[name] = float(len(values) if agg == "count" else getattr(values, agg)() or 0.0)
    return out
