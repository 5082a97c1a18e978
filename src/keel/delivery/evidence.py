"""What the arms did, read from the prediction log and the feedback table.

The worker judges a shadow or a canary on the same records the monitors read: the
prediction log's committed segments since the rollout (or its current step) began, and
the labels that have arrived through feedback. Every server replica writes its own spool
and seals it every ``serving.log_seal_every``, so the evidence is at most that old.

- ``arm_stats`` summarises one arm's rows for ``keel.delivery.decide``: requests,
  fallbacks (calls the model did not answer) and among them errors (the model raised, as
  opposed to a timeout, which the log marks apart), latency p99, outputs,
  confidences and, once enough labels are in, the realised metric (accuracy for a
  classifier; one minus the mean absolute error over the labels' spread for a regressor,
  so higher is better for both).
- ``shadow_pairs`` matches every live answer with the shadow's answer to the same request.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from keel.delivery.rollout import ArmStats
from keel.delivery.shadow import ShadowPair

if TYPE_CHECKING:
    import pandas as pd

    from keel.project import Project

__all__ = ["MIN_LABELLED", "arm_rows", "arm_stats", "labels_for", "read_since", "shadow_pairs"]

MIN_LABELLED = 30  # labelled requests per arm before the realised metric is judged
_NOT_ERRORS = frozenset({"timeout", "unloaded"})  # fallbacks a model did not cause by failing
Kind = Literal["classification", "regression"]


def read_since(project: Project, started_at: float) -> pd.DataFrame:
    """Committed predictions logged since ``started_at`` (UNIX seconds)."""
    from keel.monitoring.log import PredictionLog

    log = PredictionLog.for_project(project)
    try:
        log.flush()
        return log.read(start=datetime.fromtimestamp(started_at, UTC))
    finally:
        log.close(flush=False)


def labels_for(project: Project, frame: pd.DataFrame) -> dict[str, Any]:
    """The labels that have arrived for the predictions in ``frame``, by prediction id, as
    they were sent (``Yes``, ``1``, ``true``, ``12.5``): each arm's answers are matched to
    them by ``same_label``, whatever type the model's classes are."""
    if frame.empty or "prediction_id" not in frame:
        return {}
    from keel.monitoring.feedback import load_labels

    found = load_labels(project.store, [str(i) for i in frame["prediction_id"].unique()])
    found = found.dropna(subset=["label"])
    return dict(zip(found["prediction_id"], found["label"], strict=True))


def arm_stats(
    records: Sequence[Mapping[str, Any]],
    labels: Mapping[str, Any] | None = None,
    kind: Kind = "classification",
) -> ArmStats:
    """What one arm did, from its prediction-log rows.

    A fallback is a model call that did not answer; it is an error unless the log says the
    model was only too slow (``failure`` is ``timeout``) or not loaded yet. Rows logged
    before the log kept ``failure`` count every fallback as an error, as they always did.
    """
    fallbacks = [row for row in records if _marked(row.get("fallback"))]
    errors = sum(1 for row in fallbacks if row.get("failure") not in _NOT_ERRORS)
    answered = [row for row in records if not _marked(row.get("fallback"))]
    latencies = sorted(float(row["latency_ms"]) for row in records if _number(row, "latency_ms"))
    return ArmStats(
        requests=len(records),
        errors=errors,
        fallbacks=len(fallbacks),
        latency_p99_ms=_p99(latencies),
        predictions=tuple(float(row["output"]) for row in answered if _number(row, "output")),
        metric=_metric(answered, labels or {}, kind),
        scores=tuple(float(row["confidence"]) for row in answered if _number(row, "confidence")),
    )


def arm_rows(frame: pd.DataFrame, route: str) -> list[dict[str, Any]]:
    """The rows one route (``production``, ``canary`` or ``shadow``) logged."""
    if frame.empty or "route" not in frame:
        return []
    records: list[dict[str, Any]] = frame[frame["route"] == route].to_dict("records")
    return records


def shadow_pairs(
    frame: pd.DataFrame, labels: Mapping[str, Any], loaded_by: float | None = None
) -> list[ShadowPair]:
    """Each live answer beside the shadow's answer to the same request.

    Only live answers between the first and the last request the shadow answered count:
    before, the replicas were still loading the shadow; after, its answers (a moment
    later, off the response path) may not be in the log yet. Inside that span, a request
    without a shadow answer is one the shadow failed, timed out on or dropped. A shadow
    that has answered nothing at all is charged with every live request after
    ``loaded_by`` (UNIX seconds), by when any replica should have loaded it.
    """
    shadow = arm_rows(frame, "shadow")
    answers = {row["prediction_id"]: row for row in shadow}
    live = [
        row
        for route in ("production", "canary")
        for row in arm_rows(frame, route)
        if not _marked(row.get("fallback"))
    ]
    times = [row["time"] for row in live if row["prediction_id"] in answers]
    if not times:
        if loaded_by is None:
            return []
        after = datetime.fromtimestamp(loaded_by, UTC)
        return [_pair(row, None, labels) for row in live if row["time"] > after]
    first, last = min(times), max(times)
    return [
        _pair(row, answers.get(row["prediction_id"]), labels)
        for row in live
        if first <= row["time"] <= last
    ]


def _pair(
    live: Mapping[str, Any], shadow: Mapping[str, Any] | None, labels: Mapping[str, Any]
) -> ShadowPair:
    label = labels.get(live["prediction_id"])
    answered = shadow is not None and not _marked(shadow.get("fallback"))
    failure = None
    if not answered:
        cause = shadow.get("failure") if shadow is not None else None
        failure = cause if _marked(cause) else ("error" if shadow is not None else "missing")
    return ShadowPair(
        production=live["output"],
        shadow=shadow["output"] if answered and shadow is not None else None,
        shadow_latency_ms=float(shadow["latency_ms"]) if answered and shadow is not None else None,
        label=label,
        failure=failure,
    )


def _metric(
    answered: Sequence[Mapping[str, Any]], labels: Mapping[str, Any], kind: Kind
) -> float | None:
    from keel.monitoring.labels import same_label

    pairs = [
        (row["output"], labels[row["prediction_id"]])
        for row in answered
        if row.get("prediction_id") in labels and _present(row.get("output"))
    ]
    if kind == "classification":
        if len(pairs) < MIN_LABELLED:
            return None
        return sum(same_label(output, label) for output, label in pairs) / len(pairs)
    numbers = [(float(o), float(y)) for o, y in pairs if _is_number(o) and _is_number(y)]
    if len(numbers) < MIN_LABELLED:
        return None
    spread = statistics.pstdev(label for _, label in numbers) or 1.0
    return 1 - statistics.fmean(abs(output - label) for output, label in numbers) / spread


def _present(value: Any) -> bool:
    """An answer was logged: not None and not NaN."""
    return value is not None and value == value


def _is_number(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _p99(ordered: list[float]) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


def _marked(value: Any) -> bool:
    """A fallback marker is a non-empty string (a missing one reads back as None or NaN)."""
    return isinstance(value, str) and bool(value)


def _number(row: Mapping[str, Any], name: str) -> bool:
    value = row.get(name)
    if isinstance(value, bool):
        return True
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
