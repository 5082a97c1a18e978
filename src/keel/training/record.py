"""The parts of a run record shared by trained and imported versions.

``model_summary`` is everything measured on held-out rows: metrics, calibration,
reference statistics (what monitoring compares against), the input schema and the digest
of the held-out predictions (what the loadability check compares against).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import ConfigError
from keel.training.artifact import predict_scores
from keel.training.classes import classes_from_bundle
from keel.training.evaluate import metric_scores, metrics_of, scores_digest, scores_summary
from keel.training.metrics import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    calibration_summary,
)
from keel.training.reference import numeric_reference, reference_statistics

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from keel.store.artifacts import ArtifactStore

__all__ = ["metric_names", "model_summary", "registry_row", "store_frame", "summary_record"]


def model_summary(
    bundle: dict[str, Any], holdout: pd.DataFrame, names: list[str]
) -> dict[str, Any]:
    """Metrics, calibration, references, schema and prediction digest on ``holdout``."""
    scores = predict_scores(bundle, holdout)
    y_true = holdout[bundle["target"]].to_numpy()
    found = metric_scores(bundle, holdout)
    return summary_record(bundle, y_true, found, scores, holdout, scores, names)


def summary_record(
    bundle: dict[str, Any],
    y_true: np.ndarray[Any, Any],
    found: np.ndarray[Any, Any],
    scores: np.ndarray[Any, Any],
    holdout: pd.DataFrame,
    holdout_scores: np.ndarray[Any, Any],
    names: list[str],
) -> dict[str, Any]:
    """The run record's summary: metrics of the test rows' labels ``y_true`` and
    ``metric_scores`` (``found``), calibration and prediction reference of their
    ``predict_scores`` (``scores``), the feature reference of the stored ``holdout`` rows
    and what the gate's loadable check compares with (``holdout_scores``, theirs)."""
    classification = bundle["task"] == "classification"
    names = metric_names(names, classification)
    binary = classification and bundle["positive"] is not None
    return {
        "task": bundle["task"],
        "positive": bundle["positive"],
        "classes": classes_from_bundle(bundle).to_dict(),
        "metrics": metrics_of(bundle, y_true, found, names),
        "calibration": calibration_summary(y_true, scores, bundle["positive"]) if binary else None,
        "reference": {
            "features": reference_statistics(holdout, bundle["schema"]),
            "predictions": numeric_reference(scores),
        },
        "schema": bundle["schema"],
        "holdout": {
            "rows": len(holdout),
            "scores_sha256": scores_digest(holdout_scores),
            "scores_summary": scores_summary(holdout_scores),
        },
    }


def metric_names(names: list[str], classification: bool) -> list[str]:
    """The configured metrics that fit the task; the task's defaults if none do."""
    known = CLASSIFICATION_METRICS if classification else REGRESSION_METRICS
    unknown = sorted(set(names) - set(CLASSIFICATION_METRICS) - set(REGRESSION_METRICS))
    if unknown:
        raise ConfigError(
            f"names unknown metrics {', '.join(unknown)}",
            key="training.metrics",
            hint=f"choose from {', '.join(CLASSIFICATION_METRICS + REGRESSION_METRICS)}",
        )
    return [name for name in names if name in known] or list(known[:3])


def store_frame(artifacts: ArtifactStore, frame: pd.DataFrame) -> str:
    """Store rows as Parquet (written by DuckDB) in the artifact store; return the digest."""
    import duckdb

    from keel.features.sql import path_literal

    with tempfile.TemporaryDirectory() as folder, duckdb.connect() as connection:
        path = Path(folder) / "rows.parquet"
        connection.register("rows", frame.reset_index(drop=True))
        connection.execute(f"COPY rows TO {path_literal(path)} (FORMAT parquet)")
        return artifacts.put_file(path)


def registry_row(record: dict[str, Any]) -> dict[str, Any]:
    """The narrow registry columns of a run record."""
    data = record["data"]
    return {
        "name": record["name"],
        "source": record["source"],
        "artifact": record["artifact"]["sha256"],
        "size_bytes": record["artifact"]["size_bytes"],
        "config_hash": record["config_hash"],
        "data_ref": data["ref"][:500],
        "data_rows": data["rows"],
        "data_start": data["start"],
        "data_end": data["end"],
        "metrics": record["metrics"],
        "duration_s": record["duration_s"]["total"],
    }
