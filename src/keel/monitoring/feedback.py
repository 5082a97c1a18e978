"""Ground truth in the metadata store, and a window's performance from it (thin shell).

Feedback lives in the serving layer's ``keel_feedback`` table, read and written here
through ``keel.serving.read_feedback`` and ``replace_feedback`` (``POST /v1/feedback``
writes it too): one row per prediction id, a later report replacing an earlier one. A
row that is already stored as it is stays untouched (its arrival time too), so loading
the same file twice changes nothing, and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from keel.errors import MonitoringError
from keel.monitoring.performance import Performance, join_feedback, window_performance
from keel.monitoring.segments import LogReader
from keel.monitoring.wiring import WindowChoice

if TYPE_CHECKING:
    import pandas as pd

    from keel.project import Project
    from keel.store.metadata import MetadataStore

__all__ = [
    "DEFAULT_LABEL_DELAY",
    "FeedbackLoad",
    "ModelFacts",
    "label_delay",
    "load_feedback",
    "load_labels",
    "model_facts",
    "read_feedback_file",
    "store_feedback",
    "window_report",
]

DEFAULT_LABEL_DELAY = timedelta(days=30)
_TRUE, _FALSE = {"true", "yes"}, {"false", "no"}


@dataclass(frozen=True)
class FeedbackLoad:
    """What loading feedback did, by prediction id."""

    new: int
    updated: int
    unchanged: int


@dataclass(frozen=True)
class ModelFacts:
    """What the registry says about the model that made the logged predictions."""

    versions: tuple[str, ...]
    classes: tuple[Any, ...] | None  # None: a regressor
    probabilities: bool


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


def store_feedback(store: MetadataStore, frame: pd.DataFrame, now: float) -> FeedbackLoad:
    """Write feedback rows (the last per id wins); rows stored as they are stay as they are."""
    from keel.serving.feedback import replace_feedback

    latest = frame.drop_duplicates("prediction_id", keep="last")
    has_value = "value" in latest.columns
    rows = {
        str(row["prediction_id"]): {
            "prediction_id": str(row["prediction_id"]),
            "label": str(row["label"]),
            "value": float(row["value"]) if has_value and row["value"] == row["value"] else None,
            "received_at": now,
        }
        for row in latest.to_dict("records")
    }
    stored = _stored(store, list(rows))
    changed = [r for pid, r in rows.items() if stored.get(pid) != (r["label"], r["value"])]
    replace_feedback(store, changed)
    updated = sum(1 for row in changed if row["prediction_id"] in stored)
    return FeedbackLoad(len(changed) - updated, updated, len(rows) - len(changed))


def _stored(store: MetadataStore, ids: list[str]) -> dict[str, tuple[str, float | None]]:
    from keel.serving.feedback import read_feedback

    return {row[0]: (row[1], row[2]) for row in read_feedback(store, ids, ["label", "value"])}


def load_labels(store: MetadataStore, ids: list[str]) -> pd.DataFrame:
    """The stored feedback for these prediction ids, labels as sent (text), with the
    arrival time (``received_at``, UNIX seconds)."""
    import pandas as pd

    from keel.serving.feedback import read_feedback

    found = read_feedback(store, ids, ["label", "value", "received_at"])
    return pd.DataFrame(found, columns=["prediction_id", "label", "value", "received_at"])


def load_feedback(store: MetadataStore, ids: list[str]) -> pd.DataFrame:
    """The stored feedback for these prediction ids, labels as numbers (true/yes are 1)."""
    import pandas as pd

    frame = load_labels(store, ids).drop(columns="received_at")
    lowered = frame["label"].astype(str).str.lower()
    numbers = pd.to_numeric(frame["label"], errors="coerce")
    numbers[lowered.isin(_TRUE)] = 1.0
    numbers[lowered.isin(_FALSE)] = 0.0
    frame["label"] = numbers
    return frame


def model_facts(project: Project, versions: Sequence[str]) -> ModelFacts | None:
    """The classes of the registered versions that made these predictions (None when
    none of them is in the registry, e.g. a log written around any ``predict``)."""
    from keel.errors import KeelError
    from keel.training import Registry, load_bundle

    registry = Registry(project.store)
    found: dict[str, Any] = {}
    for ref in sorted({v for v in versions if v}):
        try:
            found[ref] = load_bundle(project.artifacts, registry.resolve(ref).artifact)
        except KeelError:
            continue
    if not found:
        return None
    classes = {ref: _classes(bundle) for ref, bundle in found.items()}
    if len(set(classes.values())) > 1:
        raise MonitoringError(
            f"the window mixes model versions with different classes ({', '.join(classes)}); "
            "narrow it with --window or --last to one version's predictions"
        )
    known = next(iter(classes.values()))
    probabilities = all(hasattr(bundle["model"], "predict_proba") for bundle in found.values())
    return ModelFacts(tuple(found), known, probabilities and known is not None)


def _classes(bundle: dict[str, Any]) -> tuple[Any, ...] | None:
    """The model's classes, the positive one last (the version's recorded positive class;
    for older artifacts the last, as ``predict_proba[:, -1]`` and the served score took it)."""
    from keel.training.classes import classes_from_bundle

    raw = getattr(bundle["model"], "classes_", None)
    if raw is None:
        return None
    classes = [getattr(c, "item", lambda c=c: c)() for c in raw]
    recorded = classes_from_bundle(bundle)
    positive = recorded.positive if recorded.binary and recorded.positive is not None else None
    positive = classes[-1] if positive is None else positive
    return (*[c for c in classes if c != positive], positive)


def label_delay(times: pd.Series, received: pd.Series) -> timedelta | None:
    """The median time from prediction to label over the labels received so far."""
    import pandas as pd

    arrived = pd.to_datetime(received.dropna(), unit="s", utc=True)
    if arrived.empty:
        return None
    median: timedelta = (arrived - times.loc[arrived.index]).median().to_pytimedelta()
    return max(median, timedelta(0))


def window_report(
    log: LogReader,
    store: MetadataStore,
    choice: WindowChoice,
    *,
    score: str | None = None,
    kind: Literal["classification", "regression"] = "classification",
    label_delay: timedelta | None = None,
    now: datetime,
    business: Sequence[tuple[str, str, str]] = (),
    project: Project | None = None,
) -> tuple[Performance, int]:
    """The window's performance, and how many of its predictions have a matched label.

    ``label_delay`` None: the median delay of the labels received so far (30 days when
    none has come). ``project`` lets the registry say the model's classes.
    """
    frame = _window(log, choice, now, score)
    labels = load_labels(store, list(frame["prediction_id"]))
    joined = join_feedback(frame, labels)
    facts = model_facts(project, list(frame["model_version"].dropna())) if project else None
    delay, source = _delay(label_delay, joined.frame)
    mature = frame["time"].max().to_pydatetime() + delay <= now
    kind = ("classification" if facts.classes else "regression") if facts else kind
    result = window_performance(
        joined, score=score or "score", kind=kind, mature=mature, business=business,
        classes=facts.classes if facts else None,
        probabilities=facts.probabilities if facts else True,
    )  # fmt: skip
    result = replace(result, label_delay_s=delay.total_seconds(), label_delay_source=source)
    return result, result.labelled


def _window(log: LogReader, choice: WindowChoice, now: datetime, score: str | None) -> Any:
    start = now - choice.duration if choice.duration is not None else None
    frame = log.read(start=start, last=choice.last)
    if "route" in frame:  # a shadow's answers reach no one and repeat production's ids
        frame = frame[frame["route"].fillna("") != "shadow"].reset_index(drop=True)
    if frame.empty:
        raise MonitoringError(f"no logged predictions in the window in {log.folder}")
    if score is not None and score not in frame.columns:
        raise MonitoringError(
            f"the log has no column {score!r}; pick --score from: "
            + ", ".join(c for c in frame.columns if c.startswith(("output", "score", "proba.")))
        )
    return frame


def _delay(configured: timedelta | None, frame: pd.DataFrame) -> tuple[timedelta, str]:
    if configured is not None:
        return configured, "monitoring.performance.label_delay"
    observed = label_delay(frame["time"], frame["received_at"])
    if observed is None:
        return DEFAULT_LABEL_DELAY, "default: no labels received yet"
    count = int(frame["received_at"].notna().sum())
    return observed, f"median delay of the {count} labels received"
