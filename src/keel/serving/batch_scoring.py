"""Scoring a table offline, row for row as ``POST /v1/predict`` would answer it.

A partition's rows go through what the server does to a request's instances: the same
validation policy, the same model, the same fallback chain for the rows the policy sends
there, and the same functions build each row's response fields and its prediction-log
record (``keel.serving.respond``). Only the transport differs: no HTTP, no response cache,
no micro-batching, no deadline (a partition is one model call), and the log's route is
``batch`` so monitoring can tell offline scoring from live traffic.

``Scorer`` is a plain, picklable value: a Dask worker builds the served model from it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from keel.schema import ServingConfig
from keel.serving.backend import Prediction, SklearnBackend
from keel.serving.metrics import Metrics
from keel.serving.respond import log_entries, row_outcomes, row_slot
from keel.serving.state import ServedModel, compile_actions, serve_model

if TYPE_CHECKING:
    import pandas as pd

    from keel.data.partitions import Partition

__all__ = ["ROUTE", "Scored", "Scorer", "score_frame", "score_partition"]

ROUTE = "batch"


@dataclass(frozen=True)
class Scorer:
    """What scoring needs: the model's backend arguments, the serving settings, and where
    ``serving.rule`` is found (the project folder), if the chain has a rule."""

    backend: dict[str, Any]
    settings: ServingConfig = field(default_factory=ServingConfig)
    root: str | None = None

    @property
    def version(self) -> str:
        return str(self.backend["version"])


@dataclass(frozen=True)
class Scored:
    """One partition scored: the response fields per row, and the log's records."""

    output: pd.DataFrame
    entries: list[dict[str, Any]]
    answered: int


def score_partition(scorer: Scorer, partition: Partition) -> Scored:
    """Read one partition and score it (runs on whichever engine's worker)."""
    from keel.data.partitions import read_partition

    return score_frame(scorer, read_partition(partition))


def score_frame(scorer: Scorer, frame: pd.DataFrame) -> Scored:
    """Score a frame's rows; missing values (NaN, NaT) arrive as JSON nulls would."""
    model = SklearnBackend(**scorer.backend)
    try:
        served = serve_model(model, scorer.settings, Metrics(), rule=_rule(scorer))
        return _score(served, compile_actions(scorer.settings), records(frame))
    finally:
        model.close()


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain Python values, a missing value as None and a time as ISO 8601 text
    (what JSON gives the server)."""
    times = frame.select_dtypes(include=["datetime", "datetimetz"]).columns
    if len(times):
        frame = frame.assign(**{str(c): frame[c].map(_iso, na_action="ignore") for c in times})
    return list(frame.astype(object).where(frame.notna(), None).to_dict("records"))


def _iso(moment: Any) -> str:
    return str(moment.isoformat())


def _score(served: ServedModel, actions: Any, instances: list[dict[str, Any]]) -> Scored:
    import pandas as pd

    started = time.perf_counter()
    rows, screening = instances, None
    if served.validator is not None:
        screened = served.validator.screen(instances)
        rows, screening = screened.rows, screened if screened.findings else None
    answerable = list(range(len(rows))) if screening is None else screening.indexes("answer")
    answers = _answers(served, [rows[i] for i in answerable])
    cached = [False] * len(answers)
    outcomes = row_outcomes(served, rows, screening, ROUTE, answerable, answers, cached)
    outputs = [row_slot(served, actions, r, o) for r, o in zip(rows, outcomes, strict=True)]
    per_row = (time.perf_counter() - started) * 1000 / max(len(rows), 1)
    entries = log_entries(rows, outcomes, outputs, per_row, None)
    answered = sum(1 for outcome in outcomes if outcome.answer is not None)
    # object columns: a label column with refused rows stays integer (with nulls), as the
    # Parquet writer types each column from its values, not from pandas' float upcast
    frame = pd.DataFrame([_flat(out) for out in outputs], dtype=object)
    return Scored(frame, entries, answered)


def _answers(served: ServedModel, picked: list[dict[str, Any]]) -> list[Prediction]:
    """The model's answers, or the fallback chain's when the model fails, as the server's
    chain would give them."""
    if not picked:
        return []
    model = served.model
    assert isinstance(model, SklearnBackend)
    try:
        return model.predict_now(picked)
    except Exception as error:
        reason = f"the model failed ({type(error).__name__})"
        return [served.backend.fall_back(row, reason, "error") for row in picked]


def _flat(out: dict[str, Any]) -> dict[str, Any]:
    """A response slot as a table row: lists and objects (findings, errors, an interval)
    as their JSON text, as ``/v1/predict`` sends them."""
    return {k: _text(v) if isinstance(v, list | dict) else v for k, v in out.items()}


def _text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _rule(scorer: Scorer) -> Any:
    text = scorer.settings.rule
    if text is None or scorer.root is None:
        return None
    from keel.serving.fallback import load_rule

    return load_rule(text, Path(scorer.root))
