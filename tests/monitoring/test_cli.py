"""`keel drift` over a logged window, as a user runs it: JSON for scripts, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keel.cli.main import app
from keel.monitoring.log import PredictionLog

from ..helpers import keel
from .synthetic import SHIFTED, population


def _run(*args: str) -> tuple[int, str]:
    """Run the CLI in-process (fast); returns exit code and stdout."""
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder log with 600 unshifted then 600 shifted predictions, and a reference CSV."""
    root = tmp_path_factory.mktemp("drift")
    population(5_000, seed=1).to_csv(root / "reference.csv", index=False)
    rows = [
        *population(600, seed=2).to_dict("records"),
        *population(600, 3, shift=True).to_dict("records"),
    ]
    with PredictionLog(root / "log") as log:
        log.append({"inputs": _clean(row), "output": 0.5} for row in rows)
    return root


def _clean(row: dict[str, object]) -> dict[str, object]:
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}


def test_drift_json_names_the_drifted_columns(logged: Path) -> None:
    """`keel drift --last 600 --json` on the shifted tail finds the five shifted columns."""
    code, out = _run(
        "drift",
        "--log",
        str(logged / "log"),
        "--reference",
        str(logged / "reference.csv"),
        "--last",
        "600",
        "--json",
    )
    assert code == 0
    report = json.loads(out)
    assert report["decision"] == "drift"
    assert sorted(report["drifted"]) == sorted(SHIFTED)
    assert {"statistic", "p_value", "p_adjusted", "effect", "decision", "moved"} <= set(
        report["columns"][0]
    )


def test_drift_against_a_logged_reference_window(logged: Path) -> None:
    """--reference-first N takes the first N logged predictions as the reference."""
    code, out = _run("drift", "--log", str(logged / "log"), "--reference-first", "600", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["reference_rows"] == 600 and report["rows"] == 600
    assert {"n0", "n1", "c1"} <= set(report["drifted"])


def test_drift_prints_a_table_for_people(logged: Path) -> None:
    """Without --json the verdict and a per-column table are printed."""
    code, out = _run(
        "drift",
        "--log",
        str(logged / "log"),
        "--reference",
        str(logged / "reference.csv"),
        "--last",
        "600",
    )
    assert code == 0
    assert out.startswith("drift") and "__unseen__" in out


def test_drift_without_a_reference_is_one_sentence(logged: Path) -> None:
    """No reference: exit 1 with one line that says which options give one."""
    result = keel("drift", "--log", str(logged / "log"))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "--reference" in result.stderr


def test_drift_on_a_missing_log_folder_is_a_user_error(tmp_path: Path) -> None:
    """A --log that is not a folder is a MonitoringError naming --log."""
    from keel.errors import MonitoringError

    with pytest.raises(MonitoringError, match="--log"):
        _run("drift", "--log", str(tmp_path / "nope"), "--reference", "x.csv")


def test_drift_in_a_project_uses_its_log_and_configured_reference(project_dir: Path) -> None:
    """In a project, the log is .keel/predictions and monitoring.reference names the file."""
    population(3_000, seed=1).to_csv(project_dir / "ref.csv", index=False)
    (project_dir / "keel.yaml").write_text(
        "name: t\nmonitoring:\n  reference: ref.csv\n  drift: {correction: bonferroni}\n"
    )
    from keel.project import Project

    with Project.open(project_dir) as project, PredictionLog.for_project(project) as log:
        log.append(
            {"inputs": _clean(r), "output": 1} for r in population(800, 4).to_dict("records")
        )
    code, out = _run("drift", "--json", "--project", str(project_dir))
    assert code == 0
    report = json.loads(out)
    assert report["correction"] == "bonferroni" and report["rows"] == 800
    assert report["drifted"] == []
