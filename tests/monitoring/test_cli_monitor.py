"""`keel monitor --once` and `keel alerts`: drift raises an alert, a webhook receives it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keel.cli.main import app
from keel.errors import AlertError
from keel.monitoring.log import PredictionLog
from keel.project import Project

from .receiver import Receiver
from .synthetic import population


def _run(*args: str) -> object:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.stdout
    return json.loads(result.stdout) if "--json" in args else result.stdout


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A local webhook receiver."""
    running = Receiver()
    yield running
    running.close()


@pytest.fixture
def drifting(project_dir: Path, receiver: Receiver) -> Path:
    """A project whose last 600 logged predictions are shifted, alerting to a webhook."""
    population(3_000, seed=1).to_csv(project_dir / "ref.csv", index=False)
    (project_dir / "keel.yaml").write_text(
        "name: t\n"
        "monitoring: {reference: ref.csv, window: {rows: 600}}\n"
        "alerts:\n"
        f"  sinks: [{{kind: webhook, name: hook, url: '{receiver.url}'}}]\n"
    )
    rows = population(600, seed=2, shift=True).to_dict("records")
    clean = [{k: (None if v != v else v) for k, v in row.items()} for row in rows]
    with Project.open(project_dir) as project, PredictionLog.for_project(project) as log:
        log.append({"inputs": row, "output": 0.5} for row in clean)
    return project_dir


def test_monitor_once_raises_a_drift_alert_and_delivers_it(
    drifting: Path, receiver: Receiver
) -> None:
    """One cycle: drift found, feature_drift opened, the webhook gets the event."""
    data = _run("monitor", "--once", "--json", "--project", str(drifting))
    assert data["drift"]["decision"] == "drift"  # type: ignore[index]
    assert data["alerts"] == {"feature_drift": "open", "prediction_drift": "none"}  # type: ignore[index]
    assert [body["rule"] for body in receiver.bodies] == ["feature_drift"]


def test_alerts_list_ack_and_resolve(drifting: Path, receiver: Receiver) -> None:
    """The opened alert is listed, acknowledged by name, then resolved by hand."""
    _run("monitor", "--once", "--project", str(drifting))
    listed = _run("alerts", "list", "--status", "open", "--json", "--project", str(drifting))
    alert_id = listed[0]["id"]  # type: ignore[index]
    acked = _run("alerts", "ack", alert_id[:8], "--by", "ana", "--json", "--project", str(drifting))
    assert acked["status"] == "acknowledged" and acked["acknowledged_by"] == "ana"  # type: ignore[index]
    resolved = _run("alerts", "resolve", alert_id, "--json", "--project", str(drifting))
    assert resolved["status"] == "resolved"  # type: ignore[index]
    assert "no alerts" in str(
        _run("alerts", "list", "--status", "open", "--project", str(drifting))
    )


def test_alerts_list_refuses_an_unknown_status(project_dir: Path) -> None:
    """A typo in --status is a one-sentence user error."""
    with pytest.raises(AlertError, match="--status"):
        _run("alerts", "list", "--status", "opened", "--project", str(project_dir))


def test_monitor_once_asks_the_retrain_policy_on_drift(drifting: Path) -> None:
    """With retrain on drift, the cycle starts a run; without a training section it fails,
    and that outcome is recorded as an info alert rather than crashing the monitor."""
    config = drifting / "keel.yaml"
    config.write_text(
        config.read_text().replace(
            "window: {rows: 600}}", "window: {rows: 600}, retrain: {on: [drift]}}"
        )
    )
    data = _run("monitor", "--once", "--json", "--project", str(drifting))
    assert data["retrain"]["run"] is True and data["retrain"]["reasons"] == ["drift"]  # type: ignore[index]
    events = _run("alerts", "list", "--json", "--project", str(drifting))
    retrain = [a for a in events if a["rule"] == "retrain"]  # type: ignore[union-attr]
    assert retrain and retrain[0]["severity"] == "info" and "failed" in retrain[0]["summary"]


def test_monitor_once_alerts_on_a_realised_performance_drop(project_dir: Path) -> None:
    """Labels say the model is no better than chance: the critical auc rule opens."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(5)
    pd.DataFrame({"x": rng.normal(0, 1, 2_000)}).to_csv(project_dir / "ref.csv", index=False)
    (project_dir / "keel.yaml").write_text(
        "name: t\n"
        "monitoring:\n"
        "  reference: ref.csv\n"
        "  window: {rows: 500}\n"
        "  performance: {score: output.probability, label_delay: 0s}\n"
        "alerts:\n"
        "  rules: [{name: auc_drop, when: 'roc_auc < 0.75', severity: critical}]\n"
    )
    scores = rng.uniform(0, 1, 500)
    with Project.open(project_dir) as project, PredictionLog.for_project(project) as log:
        ids = log.append(
            {"inputs": {"x": float(v)}, "output": {"probability": float(p)}}
            for v, p in zip(rng.normal(0, 1, 500), scores, strict=True)
        )
    labels = pd.DataFrame({"prediction_id": ids, "label": rng.integers(0, 2, 500)})
    labels.to_csv(project_dir / "labels.csv", index=False)
    _run("feedback", str(project_dir / "labels.csv"), "--project", str(project_dir))
    data = _run("monitor", "--once", "--json", "--project", str(project_dir))
    assert data["alerts"] == {"auc_drop": "open"}  # type: ignore[index]
    assert data["performance"]["labelled"] == 500 and data["performance"]["roc_auc"] < 0.75  # type: ignore[index]
