"""The thin shell between keel.yaml, the prediction log and a drift check.

Picks the window out of the log, builds the reference (a data file, saved reference
statistics, or a logged window) and turns the ``monitoring.drift`` section into
``DriftSettings``. The training layer's registry can later hand a ``Reference`` in here
instead of a file: ``run_drift`` takes any ``Reference``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import MonitoringError
from keel.monitoring.drift import compare, compare_frame
from keel.monitoring.reference import Reference
from keel.monitoring.results import DEFAULT_MIN_EFFECT, DriftReport, DriftSettings
from keel.monitoring.segments import LogReader, locations, read_segments
from keel.monitoring.sketch import Sketch
from keel.monitoring.window import (
    by_version,
    feature_view,
    load_frame,
    main_version,
    merged_sketch,
    segment_versions,
    version_counts,
)

if TYPE_CHECKING:
    import pandas as pd

    from keel.compute.engine import Engine
    from keel.schema import ComputeConfig, DriftSpec

__all__ = [
    "WindowChoice",
    "drift_settings",
    "load_reference",
    "pick_version",
    "reference_options",
    "run_drift",
    "select_window",
    "sketched_window",
    "version_window",
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
    model_version: str | None = None
    prefer_version: str | None = None
    """Judge this version when the window has its rows (the reference model's own), else
    the one that served most."""


def pick_version(counts: dict[str, int], choice: WindowChoice) -> str | None:
    """The version a window is judged for: the one asked for, else the preferred one if
    it served in the window, else the one that served most."""
    if choice.model_version is not None:
        return choice.model_version
    if choice.prefer_version is not None and choice.prefer_version in counts:
        return choice.prefer_version
    return main_version(counts)


def select_window(log: LogReader, choice: WindowChoice, now: datetime) -> pd.DataFrame:
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
    log: LogReader | None = None,
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
    log: LogReader,
    reference: Reference,
    choice: WindowChoice,
    settings: DriftSettings,
    now: datetime | None = None,
    compute: ComputeConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DriftReport:
    """Drift of the chosen window, one model version's rows only (``choice.model_version``,
    else the version that served most of the window). A window larger than
    ``exact_rows`` whose segments were sketched on this reference is judged from the
    merged sketches (milliseconds, whatever its size); otherwise from its raw rows, read
    one segment per task on the cluster when ``compute`` says dask and the window is big
    (``keel.monitoring.cluster``; ``progress(done, total)`` is told the segments counted),
    else in this process."""
    now = now or datetime.now(UTC)
    found = _from_sketches(log, reference, choice, settings, now)
    if found is not None:
        sketch, version, counts = found
        report = compare(reference, sketch, settings)
    elif (on := _on_cluster(log, reference, choice, settings, now, compute, progress)) is not None:
        report, version, counts = on
    else:
        window, version, counts = version_window(log, choice, now)
        if not any(name in window.columns for name in reference.layout.columns):
            raise _no_shared_column()
        report = compare_frame(reference, window, settings)
    others = {v or "(none)": rows for v, rows in counts.items() if v != version}
    return dataclasses.replace(report, model_version=version or None, other_versions=others)


def version_window(
    log: LogReader, choice: WindowChoice, now: datetime
) -> tuple[pd.DataFrame, str, dict[str, int]]:
    """The window's rows of one model version (plain feature names), that version, and
    the rows per version the window held."""
    rows = _window_rows(log, choice, now)
    counts = version_counts(rows)
    version = _judged_version(counts, choice)
    picked = by_version(rows)[version]
    picked = picked.tail(choice.last) if choice.last is not None else picked
    return feature_view(picked.reset_index(drop=True)), version, counts


def _judged_version(counts: dict[str, int], choice: WindowChoice) -> str:
    """``pick_version``, or one sentence when the window holds none of its rows."""
    version = pick_version(counts, choice)
    if version is None or version not in counts:
        named = ", ".join(sorted(v for v in counts if v)) or "none"
        raise MonitoringError(
            f"no predictions of model version {version} in the window (versions logged: "
            f"{named}); pass one of them to --model-version"
        )
    return version


def _no_shared_column() -> MonitoringError:
    return MonitoringError(
        "the logged predictions share no column with the reference; check the "
        "feature names (logged inputs are compared by their plain names)"
    )


def _on_cluster(
    log: LogReader,
    reference: Reference,
    choice: WindowChoice,
    settings: DriftSettings,
    now: datetime,
    compute: ComputeConfig | None,
    progress: Callable[[int, int], None] | None,
) -> tuple[DriftReport, str, dict[str, int]] | None:
    """The window judged one segment per task on the Dask cluster, or None where it is not
    worth it: another engine, a last-N window (N rows, read cheaply here), or a window of
    at most ``compute.partition_rows`` rows or one segment. Each task reads its segment
    where it is (``SegmentStore.where``); this process reads none."""
    if compute is None or compute.engine != "dask" or choice.last is not None:
        return None
    if choice.skip_first:
        return None
    start = now - choice.duration if choice.duration is not None else None
    segments = [s for s in log.segments() if start is None or s.end >= start.timestamp()]
    if len(segments) < 2 or sum(s.rows for s in segments) <= compute.partition_rows:
        return None
    from keel.compute import open_engine
    from keel.monitoring.cluster import fetched_once

    where = [log.store.where(segment.location) for segment in segments]
    engine = open_engine(compute)
    try:
        with fetched_once(engine, where) as places:
            return _judged_on(engine, reference, places, choice, settings, start, progress)
    finally:
        engine.close()


def _judged_on(
    engine: Engine,
    reference: Reference,
    places: list[Any],
    choice: WindowChoice,
    settings: DriftSettings,
    start: datetime | None,
    progress: Callable[[int, int], None] | None,
) -> tuple[DriftReport, str, dict[str, int]] | None:
    from keel.monitoring.cluster import log_window_drift, window_columns

    columns = window_columns(engine, places)
    names = feature_view(_empty([name for name, _ in columns])).columns
    if not any(name in names for name in reference.layout.columns):
        raise _no_shared_column()
    return log_window_drift(
        engine,
        reference,
        places,
        columns,
        start,
        settings,
        lambda c: _judged_version(c, choice),
        progress,
    )


def _empty(names: list[str]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(columns=names)


def _window_rows(log: LogReader, choice: WindowChoice, now: datetime) -> pd.DataFrame:
    """The logged rows of the window, all versions; the last N of one version read
    cheaply when the log's last N rows hold only that version."""
    start = now - choice.duration if choice.duration is not None else None
    if choice.last is not None and not choice.skip_first:
        tail = log.read(start=start, last=choice.last)
        versions = version_counts(tail)
        wanted = choice.model_version or choice.prefer_version
        if len(versions) <= 1 and wanted in (None, *versions):
            return _nonempty(tail, log)
    rows = log.read(start=start)
    return _nonempty(rows.iloc[choice.skip_first :] if choice.skip_first else rows, log)


def _nonempty(frame: pd.DataFrame, log: LogReader) -> pd.DataFrame:
    if frame.empty:
        raise MonitoringError(
            f"no logged predictions in the window in {log.folder}; log some, run a flush, "
            "or widen --window"
        )
    return frame


def sketched_window(
    log: LogReader,
    reference: Reference,
    choice: WindowChoice,
    settings: DriftSettings,
    now: datetime,
) -> Sketch | None:
    """The sketch of one model version's rows in the window, from segment sketches (plus
    the raw rows of a segment that straddles the window's start), or None when raw rows
    are needed or cheaper."""
    found = _from_sketches(log, reference, choice, settings, now)
    return found[0] if found is not None else None


def _from_sketches(
    log: LogReader,
    reference: Reference,
    choice: WindowChoice,
    settings: DriftSettings,
    now: datetime,
) -> tuple[Sketch, str, dict[str, int]] | None:
    if choice.last is not None or choice.skip_first or "mmd" in settings.tests:
        return None
    start = (now - choice.duration).timestamp() if choice.duration is not None else None
    segments = log.segments()
    inside = [s for s in segments if start is None or s.start >= start]
    straddling = [s for s in segments if start is not None and s.start < start <= s.end]
    counts = segment_versions(inside)
    if counts is None or sum(s.rows for s in inside + straddling) <= settings.exact_rows:
        return None
    rows = None
    if straddling:
        paths = locations(straddling, log.store)
        rows = read_segments(paths, start=datetime.fromtimestamp(start or 0.0, UTC))
        for name, extra in version_counts(rows).items():
            counts[name] = counts.get(name, 0) + extra
    version = pick_version(counts, choice)
    if version is None or version not in counts:
        return None
    sketch = merged_sketch(inside, reference, version)
    if sketch is None:
        return None
    if rows is not None and version in (parts := by_version(rows)):
        sketch = sketch.merge(reference.layout.sketch(feature_view(parts[version])))
    return sketch, version, counts
