"""A drift window never mixes model versions: in `keel drift`, the monitor cycle, and
windows judged from segment sketches."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from keel.cli.main import app
from keel.monitoring.log import PredictionLog
from keel.monitoring.reference import Reference
from keel.monitoring.results import DriftSettings
from keel.monitoring.window import sketcher_for
from keel.monitoring.wiring import WindowChoice, run_drift, sketched_window
from keel.project import Project

from ..helpers import keel
from .synthetic import SHIFTED, population


def _entries(frame: pd.DataFrame, version: str) -> list[dict[str, object]]:
    """Log entries of one model version; the newer version scores differently, which is
    what a new model does and never drift."""
    return [
        {"inputs": {k: (None if v != v else v) for k, v in row.items()}, "model_version": version}
        for row in frame.to_dict("records")
    ]


def _log_two_versions(log: PredictionLog) -> None:
    """1,500 rows of churn@1 like the reference, interleaved with 500 rows of churn@2
    whose inputs come from the shifted population (its own traffic, e.g. a canary)."""
    old = _entries(population(1_500, seed=2), "churn@1")
    new = _entries(population(500, seed=3, shift=True), "churn@2")
    for i in range(5):
        log.append(old[i * 300 : (i + 1) * 300] + new[i * 100 : (i + 1) * 100])
        log.flush()


def _run(*args: str) -> dict[str, object]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.stdout
    return dict(json.loads(result.stdout))


@pytest.fixture(scope="module")
def reference() -> Reference:
    """Reference statistics of 5,000 unshifted rows."""
    return Reference.from_frame(population(5_000, seed=1))


@pytest.fixture
def logged(tmp_path: Path, reference: Reference) -> PredictionLog:
    """A folder log of two versions' predictions, segments sketched on the reference."""
    log = PredictionLog(tmp_path / "log", sketcher=sketcher_for(reference))
    _log_two_versions(log)
    return log


def _versions(log: PredictionLog) -> pd.Series:
    return log.read()["model_version"].value_counts()


def test_the_window_is_the_version_that_served_most(
    logged: PredictionLog, reference: Reference
) -> None:
    """From raw rows: churn@1's 1,500 rows alone, no drift; churn@2 named apart."""
    counts = _versions(logged)
    report = run_drift(logged, reference, WindowChoice(), DriftSettings())
    assert (report.model_version, report.rows) == ("churn@1", counts["churn@1"])
    assert report.drifted == []
    assert dict(report.other_versions) == {"churn@2": counts["churn@2"]}


def test_a_chosen_version_is_judged_on_its_own_rows(
    logged: PredictionLog, reference: Reference
) -> None:
    """--model-version churn@2: its 500 rows, and the five shifts they carry."""
    choice = WindowChoice(model_version="churn@2")
    report = run_drift(logged, reference, choice, DriftSettings())
    assert report.rows == _versions(logged)["churn@2"]
    assert sorted(report.drifted) == sorted(SHIFTED)


def test_a_sketched_window_holds_one_version(logged: PredictionLog, reference: Reference) -> None:
    """Judged from segment sketches (past exact_rows), the window is still one version's:
    the sketch counts churn@1's rows only, and its verdict is the raw window's."""
    settings = DriftSettings(exact_rows=1_000)
    now = datetime.now(UTC) + timedelta(seconds=1)
    sketch = sketched_window(logged, reference, WindowChoice(), settings, now)
    assert sketch is not None and sketch.rows == _versions(logged)["churn@1"]
    report = run_drift(logged, reference, WindowChoice(), settings, now)
    assert (report.model_version, report.drifted) == ("churn@1", [])


def test_an_unknown_version_is_one_sentence(logged: PredictionLog, reference: Reference) -> None:
    """Asking for a version the window lacks: one line naming the versions it has."""
    result = keel(
        "drift", "--log", str(logged.folder), "--reference-first", "100",
        "--model-version", "churn@9",
    )  # fmt: skip
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "churn@9" in result.stderr and "churn@1, churn@2" in result.stderr


def test_the_monitor_cycle_checks_one_version(project_dir: Path) -> None:
    """`keel monitor --once` over a one-hour window holding two versions judges the
    larger one alone: nothing drifts, churn@2's rows are reported apart."""
    population(5_000, seed=1).to_csv(project_dir / "ref.csv", index=False)
    (project_dir / "keel.yaml").write_text("name: t\nmonitoring: {reference: ref.csv}\n")
    with Project.open(project_dir) as project, PredictionLog.for_project(project) as log:
        _log_two_versions(log)
        counts = _versions(log)
    drift = _run("monitor", "--once", "--json", "--project", str(project_dir))["drift"]
    assert isinstance(drift, dict)
    assert (drift["model_version"], drift["rows"]) == ("churn@1", counts["churn@1"])
    assert drift["drifted"] == []
    assert drift["other_versions"] == {"churn@2": counts["churn@2"]}


def test_a_preferred_version_is_judged_when_it_served(
    logged: PredictionLog, reference: Reference
) -> None:
    """The reference model's own version is judged even as the minority; a preferred
    version absent from the window falls back to the one that served most."""
    prefer = run_drift(logged, reference, WindowChoice(prefer_version="churn@2"), DriftSettings())
    absent = run_drift(logged, reference, WindowChoice(prefer_version="churn@5"), DriftSettings())
    assert (prefer.model_version, prefer.rows) == ("churn@2", _versions(logged)["churn@2"])
    assert absent.model_version == "churn@1"


def _register(project: Project, number: int) -> None:
    """Model version ``number`` of churn, with training's statistics of n0 and c0."""
    from keel.training.reference import reference_statistics
    from keel.training.registry import Registry

    schema = [{"name": "n0", "type": "float"}, {"name": "c0", "type": "category"}]
    stats = reference_statistics(population(5_000, seed=number), schema)
    row = {
        "name": "churn", "source": "train", "artifact": f"{number:064x}", "size_bytes": 1,
        "config_hash": f"{number:064x}", "data_ref": f"d@{number}", "data_rows": 5_000,
        "data_start": "2026-01-01", "data_end": "2026-06-30", "metrics": {}, "duration_s": 1.0,
    }  # fmt: skip
    registry = Registry(project.store)
    registry.register(row, {"metrics": {}, "reference": {"features": stats}}, "tester")
    registry.record_gate(number, {"passed": True, "checks": []}, True, "tester")
    registry.transition(number, "production", "tester", "test")


def test_the_cycle_judges_the_reference_models_own_rows(project_dir: Path) -> None:
    """With ``monitoring.reference: model:production`` (churn@2, just promoted), the cycle
    compares churn@2's rows with churn@2's statistics, though churn@1 served more."""
    (project_dir / "keel.yaml").write_text("name: t\nmonitoring: {reference: model:production}\n")
    with Project.open(project_dir) as project, PredictionLog.for_project(project) as log:
        _register(project, 1)
        _register(project, 2)
        _log_two_versions(log)
        counts = _versions(log)
    drift = _run("monitor", "--once", "--json", "--project", str(project_dir))["drift"]
    assert isinstance(drift, dict)
    assert (drift["model_version"], drift["rows"]) == ("churn@2", counts["churn@2"])
    assert drift["other_versions"] == {"churn@1": counts["churn@1"]}
