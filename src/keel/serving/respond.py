"""Each row's slot in the response and its record in the prediction log.

A request's rows are answered one by one: a row the model (or the fallback chain)
answered gets its prediction, a row the validation policy refused gets its errors in its
own slot. Every row, refused or answered, gets a record in the prediction log, with its
findings, so monitoring sees the traffic that arrived and not only the traffic answered.

Rows the model did not see because of the serving policy (refused, or sent to the fallback
chain by a finding or an unknown entity) are logged with ``route: policy``: the evidence
a canary or shadow is judged on stays what the models themselves answered.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from keel.serving.backend import Prediction, logged_probabilities
from keel.serving.state import Action, ServedModel, action_for
from keel.serving.validation import Finding, Screening

__all__ = [
    "POLICY_FAILURES",
    "Answered",
    "add_probabilities",
    "log_entries",
    "refused_slot",
    "row_outcomes",
    "row_slot",
]

# why the model did not answer a row, when the serving policy decided it
POLICY_FAILURES = frozenset({"invalid", "rejected", "unknown_entity"})


# not frozen: one is built per row on the hot path, and a frozen dataclass pays for
# object.__setattr__ on every field
@dataclass(slots=True)
class Answered:
    """One row's outcome: its answer (None when refused), whether the response cache gave
    it, the route that answered, and what validation found."""

    answer: Prediction | None
    cached: bool
    route: str
    findings: Sequence[Finding] = ()


def refused_slot(findings: Sequence[Finding]) -> dict[str, Any]:
    """The slot of a refused row: no prediction, its errors."""
    return {
        "prediction_id": os.urandom(16).hex(),
        "model_version": None,
        "prediction": None,
        "fallback": None,
        "errors": [finding.to_dict() for finding in findings],
    }


def log_entries(
    rows: list[dict[str, Any]],
    outcomes: list[Answered],
    outputs: list[dict[str, Any]],
    latency: float,
    raw: bytes | None,
) -> list[dict[str, Any]]:
    """The prediction log's records, complete (id and time) so the log need not copy them.

    With ``raw`` (one instance, as sent, without findings) the record carries the request
    body in place of ``inputs``: copying its bytes costs far less than encoding every value
    again, and the log reads the instance back out of it (``keel.monitoring.log``).
    """
    now = time.time()
    entries = [
        _entry(row, outcome, out, latency, now)
        for row, outcome, out in zip(rows, outcomes, outputs, strict=True)
    ]
    if raw is not None:
        del entries[0]["inputs"]
        entries[0]["request"] = orjson.Fragment(raw)
    return entries


def _entry(
    row: dict[str, Any], outcome: Answered, out: dict[str, Any], latency: float, now: float
) -> dict[str, Any]:
    answer = outcome.answer
    if answer is None:
        return _refused_entry(row, outcome, out, latency, now)
    route = outcome.route
    if outcome.cached:
        route = "cache"
    elif answer.failure in POLICY_FAILURES:
        route = "policy"
    entry: dict[str, Any] = {
        "prediction_id": out["prediction_id"],
        "inputs": row,
        "features": answer.features,
        "output": answer.prediction,
        "model_version": out["model_version"],
        "route": route,
        "confidence": answer.confidence,
        "score": answer.score,
        "latency_ms": latency,
        "fallback": answer.fallback,
        "failure": answer.failure,
        "time": now,
    }
    if outcome.findings:  # only rows with findings pay for the field
        entry["findings"] = [finding.to_dict() for finding in outcome.findings]
    if answer.features_missing:
        entry["features_missing"] = list(answer.features_missing)
    if answer.proba is not None and answer.classes is not None:
        add_probabilities(entry, answer.proba, answer.classes)
    return entry


def add_probabilities(
    entry: dict[str, Any], proba: list[float], classes: Sequence[str]
) -> dict[str, Any]:
    """A many-class answer's record gets its class probabilities as one list (``proba``)
    beside the names of the classes it holds (``proba_classes``), in the model's order:
    the segment keeps one list column, and the names compress to one copy per segment."""
    entry["proba"], entry["proba_classes"] = logged_probabilities(proba, classes)
    return entry


def _refused_entry(
    row: dict[str, Any], outcome: Answered, out: dict[str, Any], latency: float, now: float
) -> dict[str, Any]:
    """A refused row: its inputs (a wrongly typed value as missing) and its findings."""
    return {
        "prediction_id": out["prediction_id"],
        "inputs": row,
        "features": None,
        "output": None,
        "model_version": None,
        "route": "policy",
        "confidence": None,
        "score": None,
        "latency_ms": latency,
        "fallback": None,
        "failure": "rejected",
        "time": now,
        "findings": [finding.to_dict() for finding in outcome.findings],
    }


def row_outcomes(
    served: ServedModel,
    rows: list[dict[str, Any]],
    screening: Screening | None,
    arm: str | Sequence[str],
    answerable: list[int],
    answers: list[Prediction],
    cached: list[bool],
) -> list[Answered]:
    """Each row's outcome, in request order: the model's answer, the chain's, or refused.

    ``answers`` (and ``cached``) are for the rows at ``answerable``; rows the screening
    sends to the fallback chain are answered by ``served``'s chain here. ``arm`` is the
    route of every row, or one route per answerable row (a canary splits a batch)."""
    arms = [arm] * len(answerable) if isinstance(arm, str) else list(arm)
    if screening is None:
        return [
            _outcome(i, a, c, routed)
            for i, (a, c, routed) in enumerate(zip(answers, cached, arms, strict=True))
        ]
    found = screening.findings
    rest = arms[0] if len(set(arms)) == 1 else "production"  # rows no model answered
    outcomes = [Answered(None, False, rest, found.get(i, ())) for i in range(len(rows))]
    for i, answer, hit, routed in zip(answerable, answers, cached, arms, strict=True):
        outcomes[i] = _outcome(i, answer, hit, routed, found.get(i, ()))
    for i in screening.indexes("fallback"):
        reason = "the fallback answered because " + _said(found[i])
        answer = served.backend.fall_back(rows[i], reason, "invalid")
        outcomes[i] = Answered(answer, False, rest, found[i])
    return outcomes


def _outcome(
    index: int, answer: Prediction, cached: bool, arm: str, found: Sequence[Finding] = ()
) -> Answered:
    """A backend's answer as the row's outcome; an answer with ``errors`` refuses the row."""
    if answer.errors is None:
        return Answered(answer, cached, arm, found)
    refused = [Finding(index, e["field"], e["msg"], e["check"]) for e in answer.errors]
    return Answered(None, False, arm, [*found, *refused])


def _said(findings: list[Finding]) -> str:
    return "; ".join(f"{f.field} {f.message}" if f.field else f.message for f in findings)


def row_slot(
    served: ServedModel, actions: list[Action], row: dict[str, Any], outcome: Answered
) -> dict[str, Any]:
    """The row's slot in the response: its answer (with any findings) or its errors.

    The HTTP route and batch scoring both build their rows here, so a row scored offline
    carries exactly the fields ``/v1/predict`` answers with."""
    if outcome.answer is None:
        return refused_slot(outcome.findings)
    out = _shape(served, actions, row, outcome.answer, outcome.cached)
    if outcome.findings:
        out["findings"] = [finding.to_dict() for finding in outcome.findings]
    return out


def _shape(
    served: ServedModel,
    actions: list[Action],
    row: dict[str, Any],
    answer: Prediction,
    cached: bool,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prediction_id": os.urandom(16).hex(),
        "model_version": answer.model_version or served.version,
        "prediction": answer.prediction,
    }
    if served.task == "classification":
        out["label"] = answer.prediction
        out["probability"] = answer.probability
        out["confidence"] = answer.confidence
    elif answer.interval is not None:
        out["interval"] = list(answer.interval)
    if actions:
        out["action"] = action_for(actions, answer, row)
    out["fallback"] = answer.fallback
    if answer.features_missing:
        out["features_missing"] = list(answer.features_missing)
    if answer.reason is not None:
        out["reason"] = answer.reason
    if cached:
        out["cached"] = True
    return out
