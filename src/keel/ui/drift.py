"""The drift page: per column, the reference against the current window, and over time.

The reference and the window are the ones ``keel monitor`` uses (``monitoring.reference``
and ``monitoring.window`` in keel.yaml); the verdicts come from the monitoring layer's
``compare``. The history splits the last ``HISTORY`` windows and tests each on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from keel.ui.charts import Series

if TYPE_CHECKING:
    import pandas as pd

    from keel.monitoring.reference import Reference
    from keel.monitoring.results import DriftReport, DriftSettings
    from keel.project import Project

__all__ = ["HISTORY", "ColumnView", "DriftView", "coarsen", "drift_view"]

HISTORY = 12
_MAX_BUCKETS = 24


@dataclass(frozen=True)
class ColumnView:
    """One column's verdict and the shares to draw."""

    name: str
    decision: str
    test: str
    effect: float
    min_effect: float
    p_adjusted: float
    note: str | None
    labels: list[str]
    reference: list[float]
    current: list[float]


@dataclass(frozen=True)
class DriftView:
    """What the page shows; ``message`` explains an empty page."""

    message: str | None = None
    window: str = ""
    rows: int = 0
    model_version: str | None = None
    decision: str | None = None
    columns: list[ColumnView] = field(default_factory=list)
    history: list[Series] = field(default_factory=list)


def coarsen(
    labels: list[str], counts: np.ndarray, limit: int = _MAX_BUCKETS
) -> tuple[list[str], list[int]]:
    """At most ``limit`` buckets, merging neighbours; each group named by its first."""
    size = len(labels)
    if size <= limit:
        return labels, [int(c) for c in counts]
    step = -(-size // limit)
    groups = range(0, size, step)
    return [labels[i] for i in groups], [int(counts[i : i + step].sum()) for i in groups]


def _duration(window: timedelta) -> str:
    minutes = int(window.total_seconds() // 60)
    if minutes and minutes % 60 == 0:
        return f"{minutes // 60} h"
    return f"{minutes} min" if minutes else f"{window.total_seconds():g} s"


def _shares(counts: list[int]) -> list[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


def drift_view(project: Project, now: float) -> DriftView:
    """Everything the drift page shows, or why it cannot show it yet."""
    from keel.errors import KeelError

    config = project.config.monitoring
    if config is None or not config.reference:
        return DriftView(
            "No drift reference is set: add monitoring.reference (training data or saved "
            "statistics) to keel.yaml, as `keel monitor` needs too."
        )
    window = config.window if isinstance(config.window, timedelta) else None
    if window is None:
        return DriftView("Drift over time needs a time window (monitoring.window: 1h).")
    try:
        reference, frame = _load(project, now, window)
        prefer = _reference_model(project, config.reference)
    except KeelError as error:
        return DriftView(f"Cannot check drift yet: {error}")
    if frame.empty:
        return DriftView(
            f"No predictions logged in the last {HISTORY} windows of {_duration(window)}."
        )
    return _view(reference, frame, window, now, _settings(project), prefer)


def _settings(project: Project) -> DriftSettings:
    from keel.monitoring.wiring import drift_settings

    config = project.config.monitoring
    return drift_settings(config.drift if config is not None else None)


def _reference_model(project: Project, text: str) -> str | None:
    from keel.monitoring.cycle import reference_model

    return reference_model(project, text)


def _load(project: Project, now: float, window: timedelta) -> tuple[Reference, pd.DataFrame]:
    """The reference exactly as ``keel monitor`` builds it (a file, saved statistics or
    ``model:<version>``), and the logged rows of the last ``HISTORY`` windows."""
    from keel.monitoring.cycle import open_log, project_reference
    from keel.monitoring.wiring import reference_options

    config = project.config.monitoring
    assert config is not None and config.reference
    log = open_log(project)
    try:
        reference = project_reference(
            project, config.reference, log, reference_options(config.drift)
        )
        start = datetime.fromtimestamp(now, UTC) - window * HISTORY
        return reference, log.read(start=start)
    finally:
        log.close(flush=False)


def _view(
    reference: Reference,
    frame: pd.DataFrame,
    window: timedelta,
    now: float,
    settings: DriftSettings,
    prefer: str | None = None,
) -> DriftView:
    from keel.monitoring.window import feature_view

    version, frame = _one_version(frame, prefer)
    seconds = frame["time"].map(lambda t: t.timestamp()).to_numpy(dtype=float)
    index = np.floor((now - seconds) / window.total_seconds()).astype(int)
    view = feature_view(frame)
    reports = {}
    for back in sorted(set(index.tolist()), reverse=True):
        chunk = view[index == back]
        reports[now - back * window.total_seconds()] = _report(reference, chunk, settings)
    current = view[index == 0]
    if current.empty:
        return DriftView(
            f"No predictions in the current window ({_duration(window)}); older windows below.",
            window=_duration(window),
            history=_history(reports),
        )
    report = _report(reference, current, settings)
    sketch = reference.layout.sketch(current)
    return DriftView(
        window=_duration(window),
        rows=len(current),
        model_version=version,
        decision=report.decision,
        columns=[
            _column(reference, sketch, c) for c in report.columns if c.column in sketch.columns
        ],
        history=_history(reports),
    )


def _one_version(frame: pd.DataFrame, prefer: str | None) -> tuple[str | None, pd.DataFrame]:
    """The reference model's version if it served, else the one that served most, and
    its rows: windows never mix versions."""
    from keel.monitoring.window import by_version, version_counts
    from keel.monitoring.wiring import WindowChoice, pick_version

    version = pick_version(version_counts(frame), WindowChoice(prefer_version=prefer))
    if version is None:
        return None, frame
    return version or None, by_version(frame)[version]


def _report(reference: Reference, chunk: pd.DataFrame, settings: DriftSettings) -> DriftReport:
    from keel.monitoring.drift import compare_frame

    return compare_frame(reference, chunk, settings)


def _column(reference: Reference, sketch: Any, drift: Any) -> ColumnView:
    name = drift.column
    labels = reference.layout.columns[name].labels()
    ref_labels, ref_counts = coarsen(labels, reference.sketch.columns[name].counts)
    _, cur_counts = coarsen(labels, sketch.columns[name].counts)
    return ColumnView(
        name=name,
        decision=drift.decision,
        test=drift.test,
        effect=drift.effect,
        min_effect=drift.min_effect,
        p_adjusted=drift.p_adjusted,
        note=drift.note,
        labels=ref_labels,
        reference=_shares(ref_counts),
        current=_shares(cur_counts),
    )


def _history(reports: dict[float, DriftReport]) -> list[Series]:
    """The effect of each column per window, the most drifted columns first (up to six)."""
    effects: dict[str, list[tuple[float, float | None]]] = {}
    for moment, report in sorted(reports.items()):
        for column in report.columns:
            effects.setdefault(column.column, []).append((moment, column.effect))
    ranked = sorted(effects, key=lambda name: -max(v or 0.0 for _, v in effects[name]))
    return [(name, effects[name]) for name in ranked[:6]]
