"""`keel feedback FILE` and `keel performance`: labels in (idempotently), metrics out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from keel.cli.main import app
from keel.errors import MonitoringError
from keel.monitoring.log import PredictionLog
from keel.project import Project


def _run(*args: str) -> dict[str, object]:
    result = CliRunner().invoke(app, [*args, "--json"])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.stdout
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _project(root: Path, label_delay: str) -> Path:
    """600 logged probabilities and a feedback CSV (+2 unknown ids, +1 duplicate row)."""
    (root / "keel.yaml").write_text(
        f"name: t\nmonitoring:\n  performance: {{label_delay: {label_delay}}}\n"
    )
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 600)
    with Project.open(root) as project, PredictionLog.for_project(project) as log:
        ids = log.append({"inputs": {"x": float(v)}, "output": {"probability": v}} for v in p)
    labels = (rng.uniform(0, 1, 600) < p).astype(int)
    frame = pd.DataFrame({"prediction_id": [*ids, "ghost1", "ghost2", ids[0]]})
    frame["label"] = [*labels, 0, 1, labels[0]]
    frame.to_csv(root / "feedback.csv", index=False)
    return root


def test_feedback_counts_unknown_ids_and_duplicates(project_dir: Path) -> None:
    """Unknown ids and duplicate rows are reported; every id is new the first time."""
    root = _project(project_dir, "0s")
    first = _run("feedback", str(root / "feedback.csv"), "--project", str(root))
    assert first == {
        "rows": 603, "new": 602, "updated": 0, "unchanged": 0, "duplicates": 1, "unknown_ids": 2,
    }  # fmt: skip


def test_loading_the_same_feedback_twice_changes_nothing_and_says_so(project_dir: Path) -> None:
    """The second load of one file: 0 new, 0 updated, every id unchanged."""
    root = _project(project_dir, "0s")
    _run("feedback", str(root / "feedback.csv"), "--project", str(root))
    second = _run("feedback", str(root / "feedback.csv"), "--project", str(root))
    assert (second["new"], second["updated"], second["unchanged"]) == (0, 0, 602)


def test_a_corrected_label_counts_as_updated(project_dir: Path) -> None:
    """Reloading with one label changed and one id added: 1 updated, 1 new."""
    root = _project(project_dir, "0s")
    _run("feedback", str(root / "feedback.csv"), "--project", str(root))
    frame = pd.read_csv(root / "feedback.csv", dtype={"label": str})
    frame.loc[5, "label"] = "1" if frame.loc[5, "label"] == "0" else "0"
    frame.loc[len(frame)] = ["late-id", "1"]
    frame.to_csv(root / "feedback.csv", index=False)
    again = _run("feedback", str(root / "feedback.csv"), "--project", str(root))
    assert (again["new"], again["updated"], again["unchanged"]) == (1, 1, 601)


def test_feedback_text_output_names_new_updated_and_unchanged(project_dir: Path) -> None:
    """Without --json, one line says how many labels were new, updated and unchanged."""
    root = _project(project_dir, "0s")
    _run("feedback", str(root / "feedback.csv"), "--project", str(root))
    result = CliRunner().invoke(app, ["feedback", str(root / "feedback.csv"), "-p", str(root)])
    assert result.exit_code == 0
    assert "0 new, 0 updated, 602 unchanged" in result.stdout


def test_performance_is_realised_once_labels_have_matured(project_dir: Path) -> None:
    """With label_delay 0s the window is mature: accuracy and AUC from the labels."""
    root = _project(project_dir, "0s")
    _run("feedback", str(root / "feedback.csv"), "--project", str(root))
    data = _run("performance", "--score", "output.probability", "--project", str(root))
    assert data["estimated"] is False and data["labelled"] == 600
    assert 0.65 < data["metrics"]["roc_auc"] < 0.95  # type: ignore[index]


def test_performance_is_estimated_before_labels_mature(project_dir: Path) -> None:
    """With a 30-day label delay today's window is estimated, its assumptions stated."""
    root = _project(project_dir, "30d")
    data = _run("performance", "--score", "output.probability", "--project", str(root))
    assert data["estimated"] is True and data["mature"] is False
    assert "calibrated" in str(data["assumptions"])


def test_performance_on_an_unknown_score_column_names_the_choices(project_dir: Path) -> None:
    """A --score the log lacks is a user error listing the output columns."""
    root = _project(project_dir, "0s")
    with pytest.raises(MonitoringError, match=r"output\.probability"):
        _run("performance", "--score", "prob", "--project", str(root))


def test_an_estimate_says_so_in_the_text_output(project_dir: Path) -> None:
    """Before labels mature the text output calls the figures estimated, assumptions given."""
    root = _project(project_dir, "30d")
    result = CliRunner().invoke(
        app, ["performance", "--score", "output.probability", "-p", str(root)]
    )
    assert result.exit_code == 0
    assert "ESTIMATED (no labels used)" in result.stdout and "calibrated" in result.stdout


def test_label_delay_option_overrides_the_observed_delay(project_dir: Path) -> None:
    """--label-delay 30d keeps a window with fresh labels estimated, and says which delay."""
    root = _project(project_dir, "0s")
    (root / "keel.yaml").write_text("name: t\n")
    _run("feedback", str(root / "feedback.csv"), "--project", str(root))
    observed = _run("performance", "--score", "output.probability", "-p", str(root))
    forced = _run(
        "performance", "--score", "output.probability", "--label-delay", "30d", "-p", str(root)
    )
    assert observed["estimated"] is False and "median delay" in str(observed["label_delay_source"])
    assert forced["estimated"] is True and forced["label_delay_s"] == 30 * 86400
    assert forced["label_delay_source"] == "--label-delay"


def test_a_window_of_one_class_says_auc_is_undefined_and_exits_0(project_dir: Path) -> None:
    """Every label 0: `keel performance` prints accuracy and a sentence, not a traceback."""
    root = _project(project_dir, "0s")
    frame = pd.read_csv(root / "feedback.csv")
    frame.assign(label=0).to_csv(root / "feedback.csv", index=False)
    _run("feedback", str(root / "feedback.csv"), "--project", str(root))
    result = CliRunner().invoke(
        app, ["performance", "--score", "output.probability", "-p", str(root)]
    )
    assert result.exit_code == 0
    assert "roc_auc and pr_auc are undefined" in result.stdout and "accuracy:" in result.stdout


def test_the_text_output_shows_the_reliability_bins(project_dir: Path) -> None:
    """Realised output lists each probability bin's mean probability and observed rate."""
    root = _project(project_dir, "0s")
    _run("feedback", str(root / "feedback.csv"), "--project", str(root))
    args = ["performance", "--score", "output.probability", "-p", str(root)]
    result = CliRunner(env={"COLUMNS": "400"}).invoke(app, args)
    labels = pd.read_csv(root / "feedback.csv", dtype={"prediction_id": str})
    with Project.open(root) as project, PredictionLog.for_project(project) as log:
        logged = log.read()[["prediction_id", "output.probability"]].astype({"prediction_id": str})
    both = logged.merge(labels.drop_duplicates("prediction_id"), on="prediction_id")
    first = both[both["output.probability"] < 0.1]
    bin_text = f"{first['output.probability'].mean():.2f}->{first['label'].mean():.2f}"
    assert f"{bin_text} ({len(first)})" in result.stdout
