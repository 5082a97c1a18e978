"""The slice evidence for the gate: each slice's metrics, intervals and class counts.

The model scores the held-out rows once; each slice is a cut of those scores. Intervals
come from ``keel.training.bounds``; the decision is ``keel.training.slice_gate``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from keel.errors import TrainingDataError
from keel.training.bounds import interval
from keel.training.scoring import metric_scores, metrics_of
from keel.training.slice_gate import SliceEvidence, too_few

if TYPE_CHECKING:
    import pandas as pd

    from keel.schema import SliceSpec

__all__ = ["slice_evidence"]


def slice_evidence(
    spec: SliceSpec | None, bundle: dict[str, Any] | None, holdout: pd.DataFrame
) -> dict[str, SliceEvidence]:
    """Per value of ``spec.column``: the slice's metrics, intervals and class counts."""
    if spec is None or bundle is None:
        return {}
    if spec.column not in holdout.columns:
        raise TrainingDataError(
            f"gate.slices.column '{spec.column}' is not a column of the training data"
        )
    y_true = holdout[bundle["target"]].to_numpy()
    scores = metric_scores(bundle, holdout)  # predicted once, then cut into slices
    groups = holdout.groupby(spec.column, dropna=False, observed=True).indices
    return {
        str(value): _one_slice(bundle, y_true[rows], scores[rows], spec)
        for value, rows in groups.items()
    }


def _one_slice(
    bundle: dict[str, Any],
    y_true: np.ndarray[Any, Any],
    scores: np.ndarray[Any, Any],
    spec: SliceSpec,
) -> SliceEvidence:
    """A slice's metrics, their confidence intervals and (binary) its class counts."""
    values = metrics_of(bundle, y_true, scores, sorted(spec.thresholds))
    positive = bundle["positive"] if bundle["task"] == "classification" else None
    hits = None if positive is None else int(np.sum(y_true == positive))
    found = SliceEvidence(
        rows=len(y_true),
        metrics=values,
        positives=hits,
        negatives=None if hits is None else len(y_true) - hits,
    )
    if too_few(spec, found) is not None:
        return found  # it will not be judged: no interval to compute

    def recompute(metric: str) -> Callable[[Any, Any], float | None]:
        return lambda y, s: metrics_of(bundle, y, s, [metric]).get(metric)

    level = spec.confidence
    intervals = {
        metric: interval(metric, value, y_true, scores, positive, level, recompute(metric))
        for metric, value in values.items()
        if value is not None
    }
    return dataclasses.replace(found, intervals=intervals)
