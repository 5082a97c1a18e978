"""The thin shell between keel.yaml, the prediction log and a drift check.

Picks the window out of the log, builds the reference (a data file, saved reference
statistics, or a logged window) and turns the ``monitoring.drift`` section into
``DriftSettings``. The training layer's registry can later hand a ``Reference`` in here
instead of a file: ``run_drift`` takes any ``Reference``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import MonitoringError
from keel.monitoring.drift import compare, compare_frame
from keel.monitoring.log import PredictionLog
from keel.monitoring.reference import Reference
from keel.monitoring.results import DEFAULT_MIN_EFFECT, DriftReport, DriftSettings
from keel.monitoring.segments import locations, read_segments
from keel.monitoring.sketch import Sketch
from keel.monitoring.window import feature_view, load_frame, merged_sketch

if TYPE_CHECKING:
    import pandas as pd

    from keel.schema import DriftSpec

__all__ = [
    "WindowChoice",
    "drift_settings",
    "load_reference",
    "reference_options",
    "run_drift",
    "select_window",
    "sketched_window",
]


def drift_settings(spec: DriftSpec | None) -> DriftSettings:
    """``DriftSettings`` from the ``monitoring.drift`` section (defaults without one)."""
    if spec is None:
        return DriftSettings()
    return DriftSettings(
        tests=tuple(spec.tests),
        correction=spec.correction,
        alpha=spec.alpha,
        min_effect={**DEFAULT_MIN_EFFECT, **{str(k): v for k, v in spec.min_effect.items()}},
        column_min_effect=dict(spec.column_min_effect),
        psi_bins=spec.psi_bins,
        mmd_sample=spec.mmd_sample,
        permutations=spec.permutations,
    )


def reference_options(spec: DriftSpec | None) -> dict[str, Any]:
    """How ``monitoring.drift`` shapes a reference: bins, category cap, excluded columns."""
    if spec is None:
        return {}
    return {"bins": spec.bins, "max_categories": spec.max_categories, "exclude": spec.exclude}


@dataclass(frozen=True)
class WindowChoice:
    """Which logged predictions form the window: the last duration, or the last N."""

    duration: timedelta | None = None
    last: int | None = None
    skip_first: int = 0


def select_window(log: PredictionLog, choice: WindowChoice, now: datetime) -> pd.DataFrame:
    """The window's logged rows, under their plain feature names."""
    start = now - choice.duration if choice.duration is not None else None
    if choice.skip_first:
        frame = log.read(start=start).iloc[choice.skip_first :]
        frame = frame.tail(choice.last) if choice.last is not None else frame
    else:
        frame = log.read(start=start, last=choice.last)
    if frame.empty:
        raise MonitoringError(
            f"no logged predictions in the window in {log.folder}; log some, run a flush, "
            "or widen --window"
        )
    return feature_view(frame.reset_index(drop=True))


def load_reference(
    path: Path | None,
    log: PredictionLog | None = None,
    first: int | None = None,
    bins: int = 100,
    max_categories: int = 50,
    exclude: Sequence[str] = (),
) -> Reference:
    """The reference: a data file, saved reference statistics, or the first N logged;
    ``exclude`` names columns never to test (ids, timestamps, the label)."""
    if path is not None:
        if path.suffix.lower() == ".json" and path.exists():
            return Reference.load(path)
        frame = load_frame(path).drop(columns=list(exclude), errors="ignore")
        return Reference.from_frame(frame, bins=bins, max_categories=max_categories)
    if first is not None and log is not None:
        frame = log.read().head(first)
        if len(frame) < first:
            raise MonitoringError(
                f"the log holds {len(frame)} predictions, fewer than the {first} asked for "
                "as the reference; lower --reference-first"
            )
        view = feature_view(frame).drop(columns=list(exclude), errors="ignore")
        return Reference.from_frame(view, bins=bins, max_categories=max_categories)
    raise MonitoringError(
        "no reference to compare with: pass --reference FILE, --reference-first N, or set "
        "monitoring.reference in keel.yaml"
    )


def run_drift(
    log: PredictionLog,
    reference: Reference,
    choice: WindowChoice,
    settings: DriftSettings,
    now: datetime | None = None,
) -> DriftReport:
    """Drift of the chosen window. A window larger than ``exact_rows`` whose segments were
    sketched on this reference is judged from the merged sketches (milliseconds, whatever
    its size); otherwise from its raw rows."""
    now = now or datetime.now(UTC)
    sketch = sketched_window(log, reference, choice, settings, now)
    if sketch is not None:
        return compare(reference, sketch, settings)
    window = select_window(log, choice, now)
    if not any(name in window.columns for name in reference.layout.columns):
        raise MonitoringError(
            "the logged predictions share no column with the reference; check the feature "
            "names (logged inputs are compared by their plain names)"
        )
    return compare_frame(reference, window, settings)


def sketched_window(
    log: PredictionLog,
    reference: Reference,
    choice: WindowChoice,
    settings: DriftSettings,
    now: datetime,
) -> Sketch | None:
    """The window's sketch from segment sketches (plus the raw rows of a segment that
    straddles the window's start), or None when raw rows are needed or cheaper."""
    if choice.last is not None or choice.skip_first or "mmd" in settings.tests:
        return None
    start = (now - choice.duration).timestamp() if choice.duration is not None else None
    segments = log.segments()
    inside = [s for s in segments if start is None or s.start >= start]
    straddling = [s for s in segments if start is not None and s.start < start <= s.end]
    if sum(s.rows for s in inside + straddling) <= settings.exact_rows:
        return None
    sketch = merged_sketch(inside, reference)
    if sketch is None:
        return None
    if straddling:
        paths = locations(straddling, log.store)
        rows = read_segments(paths, start=datetime.fromtimestamp(start or 0.0, UTC))
        sketch = sketch.merge(reference.layout.sketch(feature_view(rows)))
    return sketch
