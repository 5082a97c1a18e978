"""Windows from the log: segment sketches stand in for rows; names map to the reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from keel.monitoring.log import PredictionLog
from keel.monitoring.reference import Reference
from keel.monitoring.results import DriftSettings
from keel.monitoring.window import feature_view, sketcher_for
from keel.monitoring.wiring import WindowChoice, run_drift, sketched_window

from .synthetic import SHIFTED, population

SETTINGS = DriftSettings(exact_rows=1_000)


def _entries(frame: pd.DataFrame) -> list[dict[str, object]]:
    rows = frame.to_dict("records")
    return [
        {"inputs": {k: (None if v != v else v) for k, v in r.items()}, "output": 1} for r in rows
    ]


def _log_batches(folder: Path, reference: Reference, times: list[float]) -> PredictionLog:
    clock = iter(times)
    log = PredictionLog(folder, sketcher=sketcher_for(reference), clock=lambda: next(clock))
    for seed in range(len(times)):
        log.append(_entries(population(600, seed=10 + seed, shift=True)))
        log.flush()
    return log


def test_feature_view_uses_plain_names_and_keeps_outputs() -> None:
    """input.x and feature.x become x (the feature wins); output.* and confidence stay."""
    frame = pd.DataFrame(
        {"input.x": [1], "feature.x": [2], "input.y": [3], "output.p": [0.1], "confidence": [0.9]}
    )
    view = feature_view(frame)
    assert list(view.columns) == ["x", "y", "output.p", "confidence"]
    assert view["x"].iloc[0] == 2


def test_a_large_window_is_judged_from_segment_sketches(tmp_path: Path) -> None:
    """Past exact_rows, the window's sketch is the merge of its segments' sketches."""
    reference = Reference.from_frame(population(5_000, seed=1))
    log = _log_batches(tmp_path, reference, [100.0, 200.0, 300.0])
    now = datetime.fromtimestamp(400.0, UTC)
    sketch = sketched_window(log, reference, WindowChoice(), SETTINGS, now)
    assert sketch is not None and sketch.rows == 1_800
    report = run_drift(log, reference, WindowChoice(), SETTINGS, now)
    assert sorted(report.drifted) == sorted(SHIFTED)
    log.close()


def test_a_segment_straddling_the_window_start_contributes_only_its_rows_inside(
    tmp_path: Path,
) -> None:
    """A window starting inside a segment counts that segment's later rows only."""
    reference = Reference.from_frame(population(5_000, seed=1))
    clock = iter([100.0, 200.0, 300.0])
    log = PredictionLog(tmp_path, sketcher=sketcher_for(reference), clock=lambda: next(clock))
    for seed in range(3):  # t=100 and t=200 share the first segment; t=300 is the second
        log.append(_entries(population(600, seed=10 + seed, shift=True)))
        if seed:
            log.flush()
    now = datetime.fromtimestamp(300.5, UTC)
    choice = WindowChoice(duration=timedelta(seconds=150))  # from t=150.5
    sketch = sketched_window(log, reference, choice, SETTINGS, now)
    assert sketch is not None and sketch.rows == 1_200
    log.close()


def test_small_windows_use_raw_rows_for_exact_tests(tmp_path: Path) -> None:
    """At or below exact_rows no sketch is used, so the exact KS test can run."""
    reference = Reference.from_frame(population(5_000, seed=1))
    log = _log_batches(tmp_path, reference, [100.0])
    now = datetime.fromtimestamp(200.0, UTC)
    assert sketched_window(log, reference, WindowChoice(), SETTINGS, now) is None
    log.close()


def test_a_project_log_sketches_segments_on_its_configured_reference(project_dir: Path) -> None:
    """With monitoring.reference set, every rolled segment carries its sketch."""
    from keel.project import Project

    population(1_000, seed=1).to_csv(project_dir / "ref.csv", index=False)
    (project_dir / "keel.yaml").write_text("name: t\nmonitoring: {reference: ref.csv}\n")
    with Project.open(project_dir) as project, PredictionLog.for_project(project) as log:
        log.append(_entries(population(50, seed=2)))
        log.flush()
        sketch = log.segments()[0].sketch
    assert sketch is not None and sketch["columns"]["c0"]["nulls"] == 0
