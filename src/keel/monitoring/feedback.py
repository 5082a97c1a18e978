"""Ground truth in the metadata store, and a window's performance from it (thin shell).

Feedback lives in the serving layer's ``keel_feedback`` table (``POST /v1/feedback``
writes it too): one row per prediction id, a later report replacing an earlier one, so
loading the same file twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from keel.errors import MonitoringError
from keel.monitoring.log import PredictionLog
from keel.monitoring.performance import Performance, join_feedback, window_performance
from keel.monitoring.wiring import WindowChoice

if TYPE_CHECKING:
    import pandas as pd

    from keel.store.metadata import MetadataStore

__all__ = ["load_feedback", "read_feedback_file", "store_feedback", "window_report"]

_TRUE, _FALSE = {"true", "yes"}, {"false", "no"}


def read_feedback_file(path: Path) -> pd.DataFrame:
    """A CSV of prediction_id, label and optionally value."""
    import pandas as pd

    if not path.is_file():
        raise MonitoringError(f"feedback file {path} does not exist; pass a CSV file")
    frame = pd.read_csv(path, dtype={"prediction_id": str, "label": str})
    missing = {"prediction_id", "label"} - set(frame.columns)
    if missing:
        raise MonitoringError(
            f"{path} lacks the column(s) {', '.join(sorted(missing))}; it needs "
            "prediction_id,label and optionally value"
        )
    return frame


def store_feedback(store: MetadataStore, frame: pd.DataFrame, now: float) -> int:
    """Write feedback rows (the last per id wins); return how many ids were stored."""
    import sqlalchemy as sa

    from keel.serving.tables import feedback

    latest = frame.drop_duplicates("prediction_id", keep="last")
    has_value = "value" in latest.columns
    rows = [
        {
            "prediction_id": str(row["prediction_id"]),
            "label": str(row["label"]),
            "value": float(row["value"]) if has_value and row["value"] == row["value"] else None,
            "received_at": now,
        }
        for row in latest.to_dict("records")
    ]
    ids = [row["prediction_id"] for row in rows]
    with store.begin() as conn:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            conn.execute(sa.delete(feedback).where(feedback.c.prediction_id.in_(chunk)))
        if rows:
            conn.execute(feedback.insert(), rows)
    return len(rows)


def load_feedback(store: MetadataStore, ids: list[str]) -> pd.DataFrame:
    """The stored feedback for these prediction ids."""
    import pandas as pd
    import sqlalchemy as sa

    from keel.serving.tables import feedback

    columns = [feedback.c.prediction_id, feedback.c.label, feedback.c.value]
    found: list[Any] = []
    with store.begin() as conn:
        for start in range(0, len(ids), 500):
            query = sa.select(*columns).where(
                feedback.c.prediction_id.in_(ids[start : start + 500])
            )
            found.extend(conn.execute(query).all())
    frame = pd.DataFrame(found, columns=["prediction_id", "label", "value"])
    frame["label"] = _labels(frame["label"])
    return frame


def _labels(labels: pd.Series) -> pd.Series:
    """Stored labels are text: numbers become numbers, true/false become 1/0."""
    import pandas as pd

    lowered = labels.astype(str).str.lower()
    numbers = pd.to_numeric(labels, errors="coerce")
    numbers[lowered.isin(_TRUE)] = 1.0
    numbers[lowered.isin(_FALSE)] = 0.0
    return numbers


def window_report(
    log: PredictionLog,
    store: MetadataStore,
    choice: WindowChoice,
    *,
    score: str,
    kind: Literal["classification", "regression"],
    label_delay: timedelta,
    now: datetime,
    business: Sequence[tuple[str, str, str]],
) -> tuple[Performance, int]:
    """The window's performance, and how many of its predictions have feedback."""
    start = now - choice.duration if choice.duration is not None else None
    frame = log.read(start=start, last=choice.last)
    if frame.empty:
        raise MonitoringError(f"no logged predictions in the window in {log.folder}")
    if score not in frame.columns:
        raise MonitoringError(
            f"the log has no column {score!r}; pick --score from: "
            + ", ".join(c for c in frame.columns if c.startswith("output") or c == "confidence")
        )
    joined = join_feedback(frame, load_feedback(store, list(frame["prediction_id"])))
    newest = frame["time"].max().to_pydatetime()
    mature = newest + label_delay <= now
    result = window_performance(joined, score=score, kind=kind, mature=mature, business=business)
    return result, result.labelled
