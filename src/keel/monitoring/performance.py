"""Model performance per window, from labels when they have come, estimated before.

Pure functions. ``join_feedback`` matches ground truth to logged predictions by id
(later reports for an id replace earlier ones; ids the log does not know are counted,
not dropped silently). ``window_performance`` gives the realised metrics of a window
whose labels have matured, computed from the logged scores (the positive class's
probability, or every class's) and the served labels, each with a 95% interval. Until
then a classifier's metrics are estimated from its probabilities (confidence-based
estimation), never from a hard label, and the result says it is an estimate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import orjson

from keel.monitoring.labels import infer_classes, match_labels
from keel.monitoring.realised import (
    Metrics,
    binary_metrics,
    calibration_table,
    multiclass_metrics,
    regression_metrics,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ESTIMATE_ASSUMPTIONS",
    "HARD_SCORES",
    "NO_PROBABILITIES",
    "Joined",
    "Performance",
    "estimate_from_confidence",
    "expected_auc",
    "join_feedback",
    "window_performance",
]

Kind = Literal["classification", "regression"]
Array = np.ndarray[Any, Any]

ESTIMATE_ASSUMPTIONS = (
    "estimated from the model's own probabilities: assumes they are calibrated and that "
    "only the inputs shifted, not how outcomes follow from them (no concept drift)"
)
NO_PROBABILITIES = (
    "no estimate: the model logs no probabilities (it has no predict_proba), and an "
    "estimate from its hard labels would always look perfect; wait for labels"
)
HARD_SCORES = (
    "no estimate: the score column holds only 0 and 1, hard labels rather than "
    "probabilities; pass --score with the logged probability, or wait for labels"
)


@dataclass(frozen=True)
class Joined:
    """Predictions with their labels, and what could not be matched."""

    frame: pd.DataFrame
    unknown_ids: int
    duplicates: int


@dataclass(frozen=True)
class Performance:
    """One window's performance: realised from labels, or estimated before they mature."""

    kind: Literal["binary", "multiclass", "regression"]
    rows: int
    labelled: int
    mature: bool
    estimated: bool
    metrics: Mapping[str, float]
    intervals: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    business: Mapping[str, float] = field(default_factory=dict)
    calibration: tuple[tuple[float, float, int], ...] = ()
    assumptions: str | None = None
    notes: tuple[str, ...] = ()
    unmatched: int = 0
    unmatched_examples: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    positive: str | None = None
    label_delay_s: float | None = None
    label_delay_source: str | None = None


@dataclass(frozen=True)
class _Rows:
    """A window's rows as arrays: label index, served label index, probabilities."""

    y: Array  # index into classes; -1 unmatched, -2 no label
    served: Array  # index into classes of the served label; -1 when not one
    proba: Array | None  # (rows, classes) probabilities, NaN where not logged
    why: str = NO_PROBABILITIES  # why there are none


def join_feedback(predictions: pd.DataFrame, feedback: pd.DataFrame) -> Joined:
    """Left-join feedback (prediction_id, label[, value]) onto predictions by id."""
    duplicates = int(feedback["prediction_id"].duplicated().sum())
    latest = feedback.drop_duplicates("prediction_id", keep="last")
    known = latest["prediction_id"].isin(predictions["prediction_id"])
    frame = predictions.merge(latest, on="prediction_id", how="left")
    return Joined(frame, unknown_ids=int((~known).sum()), duplicates=duplicates)


def window_performance(
    joined: Joined,
    *,
    score: str = "score",
    label: str = "label",
    kind: Kind = "classification",
    classes: Sequence[Any] | None = None,
    probabilities: bool = True,
    mature: bool = True,
    business: Sequence[tuple[str, str, str]] = (),
) -> Performance:
    """Realised metrics when the window is mature and labelled, else an estimate.

    ``classes`` are the model's (the last is the positive class of a binary model); without
    them they are inferred from the labels. ``probabilities`` is False for a model without
    ``predict_proba``: its logged score is a hard label and is never used as a probability.
    Business metrics are (name, column, sum|mean|count) over the labelled rows.
    """
    frame = joined.frame
    labels = frame[label] if label in frame else [None] * len(frame)
    if kind == "regression":
        return _regression(frame, labels, score, mature, business)
    # no model and no label yet to say: a binary model whose score is P(1)
    known = list(classes) if classes is not None else infer_classes(list(labels)) or [0, 1]
    rows = _rows(frame, labels, known, score if probabilities else None)
    labelled = rows.y >= 0
    unmatched = rows.y == -1
    base: dict[str, Any] = dict(
        kind="binary" if len(known) <= 2 else "multiclass",
        rows=len(frame),
        labelled=int(labelled.sum()),
        mature=mature,
        business=_business(frame[labelled], business),
        unmatched=int(unmatched.sum()),
        unmatched_examples=_examples(labels, unmatched),
        classes=tuple(str(c) for c in known),
        positive=str(known[-1]) if len(known) == 2 else None,
    )
    if mature and labelled.any():
        return _realised(rows, labelled, known, base)
    return _estimate(rows, base)


def _rows(frame: pd.DataFrame, labels: Any, classes: list[Any], score: str | None) -> _Rows:
    y = match_labels(list(labels), classes)
    outputs = frame["output"] if "output" in frame else [None] * len(frame)
    served = np.maximum(match_labels(list(outputs), classes), -1)
    proba = _probabilities(frame, classes, score)
    if proba is not None and (served < 0).any():  # no served label logged: the argmax
        served = np.where(served < 0, np.nan_to_num(proba, nan=-1).argmax(axis=1), served)
    if proba is not None and np.isin(proba[np.isfinite(proba)], (0.0, 1.0)).all():
        return _Rows(y, served, None, HARD_SCORES)  # a label logged as a score
    return _Rows(y, served, proba)


def _probabilities(frame: pd.DataFrame, classes: list[Any], score: str | None) -> Array | None:
    if score is None or not classes:
        return None
    if len(classes) == 2:
        if score not in frame or not frame[score].notna().any():
            return None
        p = frame[score].to_numpy(dtype=float)
        return np.column_stack([1 - p, p])
    named = _named_probabilities(frame, classes)
    if "proba" not in frame or not frame["proba"].notna().any():
        return named
    proba = named if named is not None else np.full((len(frame), len(classes)), np.nan)
    return _listed_probabilities(frame, classes, proba)


def _named_probabilities(frame: pd.DataFrame, classes: list[Any]) -> Array | None:
    """Segments rolled before ``proba`` lists: one ``proba.<class>`` column per class."""
    columns = [f"proba.{c}" for c in classes]
    if not any(c in frame for c in columns):
        return None
    missing = np.full(len(frame), np.nan)
    return np.column_stack([frame[c].to_numpy(float) if c in frame else missing for c in columns])


def _listed_probabilities(frame: pd.DataFrame, classes: list[Any], proba: Array) -> Array:
    """Fill ``proba`` (rows, classes) from the ``proba`` lists: each list's values go to
    the model's classes named in its row's ``proba_classes``, matched as labels are; one
    step per distinct class list (one per model, or per top-class set of a wide model)."""
    present = np.flatnonzero(frame["proba"].notna().to_numpy())
    names = frame["proba_classes"].iloc[present]
    for text, at in names.groupby(names, sort=False).indices.items():
        rows = present[at]
        columns = match_labels(orjson.loads(text), classes)
        known = columns >= 0  # a class the model does not have is left out
        values = np.vstack(frame["proba"].iloc[rows].to_list()).astype(float)
        proba[np.ix_(rows, columns[known])] = values[:, known]
    return proba


def _realised(
    rows: _Rows, labelled: Array, classes: list[Any], base: dict[str, Any]
) -> Performance:
    proba = rows.proba[labelled] if rows.proba is not None else None
    y, served = rows.y[labelled], rows.served[labelled]
    table: tuple[tuple[float, float, int], ...] = ()
    if base["kind"] == "binary":
        p = proba[:, 1] if proba is not None else None
        scored = np.isfinite(p) if p is not None else np.ones(len(y), bool)
        p_scored = None if p is None else p[scored]
        result = binary_metrics(y[scored] == 1, p_scored, served[scored] == 1, *classes[::-1])
        if p is not None:
            table = calibration_table((y[scored] == 1).astype(float), p[scored])
        result = _left_out(result, int((~scored).sum()))
    else:
        result = multiclass_metrics(y, proba, served)
    return Performance(
        **base,
        estimated=False,
        metrics=result.values,
        intervals=result.intervals,
        calibration=table,
        notes=result.notes,
    )


def _left_out(result: Metrics, missing: int) -> Metrics:
    if not missing:
        return result
    note = f"{missing} labelled rows have no logged score (fallback answers) and are left out"
    return Metrics(result.values, result.intervals, (*result.notes, note))


def _estimate(rows: _Rows, base: dict[str, Any]) -> Performance:
    if rows.proba is None:
        return Performance(**base, estimated=False, metrics={}, notes=(rows.why,))
    answered = np.isfinite(rows.proba).any(axis=1)
    proba = rows.proba[answered]
    if base["kind"] == "binary":
        metrics = estimate_from_confidence(proba[:, 1], rows.served[answered] == 1)
    else:  # the expected share of right answers is the mean top probability
        metrics = {"accuracy": float(np.nanmax(proba, axis=1).mean())} if len(proba) else {}
    return Performance(**base, estimated=True, metrics=metrics, assumptions=ESTIMATE_ASSUMPTIONS)


def _regression(
    frame: pd.DataFrame, labels: Any, score: str, mature: bool,
    business: Sequence[tuple[str, str, str]],
) -> Performance:  # fmt: skip
    import pandas as pd

    y = pd.to_numeric(pd.Series(list(labels), dtype=object), errors="coerce").to_numpy(float)
    given = pd.Series(list(labels), dtype=object).notna().to_numpy()
    predicted = frame[score].to_numpy(dtype=float) if score in frame else np.full(len(y), np.nan)
    labelled = np.isfinite(y) & np.isfinite(predicted)
    unmatched = given & ~np.isfinite(y)
    base: dict[str, Any] = {
        "kind": "regression",
        "rows": len(frame),
        "labelled": int(labelled.sum()),
        "mature": mature,
        "business": _business(frame[labelled], business),
        "unmatched": int(unmatched.sum()),
        "unmatched_examples": _examples(labels, unmatched),
    }
    if not (mature and labelled.any()):
        note = "a regressor's error cannot be estimated before its labels come; wait for them"
        return Performance(**base, estimated=False, metrics={}, notes=(note,))
    result = regression_metrics(y[labelled], predicted[labelled])
    return Performance(
        **base, estimated=False, metrics=result.values, intervals=result.intervals,
        notes=result.notes,
    )  # fmt: skip


def estimate_from_confidence(p: Array, predicted: Array | None = None) -> dict[str, float]:
    """Expected accuracy, F1 and ROC AUC if each score is the true probability of the
    positive class; ``predicted`` is the served decision (default: p >= 0.5)."""
    p = np.clip(p.astype(float), 0.0, 1.0)
    positive = p >= 0.5 if predicted is None else predicted.astype(bool)
    accuracy = float(np.mean(np.where(positive, p, 1 - p)))
    tp, fp, fn = p[positive].sum(), (1 - p[positive]).sum(), p[~positive].sum()
    f1 = float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else 0.0
    return {"accuracy": accuracy, "f1": f1, "roc_auc": expected_auc(p)}


def expected_auc(p: Array) -> float:
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


def _examples(labels: Any, mask: Array, most: int = 3) -> tuple[str, ...]:
    values = [str(v) for v, bad in zip(labels, mask, strict=True) if bad]
    return tuple(dict.fromkeys(values))[:most]


def _business(frame: pd.DataFrame, specs: Sequence[tuple[str, str, str]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, column, agg in specs:
        values: Any = frame[column] if column in frame else frame.iloc[:0, :0]
        out[name] = float(len(values) if agg == "count" else getattr(values, agg)() or 0.0)
    return out
