"""The gate's baseline check: a candidate must beat a trivial model on the same split."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from keel.project import Project
from keel.schema import GateConfig
from keel.training import train
from keel.training.gate import Evidence, decide
from keel.training.gating import load_holdout
from keel.training.registry import Registry
from tests.training.test_positive_class import GOOD, loan_body, loan_frame

MakeProject = Callable[..., Project]
DUMMY = {"accuracy": 0.9452, "roc_auc": 0.5, "log_loss": 0.2}


def _evidence(metrics: dict[str, float | None], baseline: Any = DUMMY) -> Evidence:
    return Evidence(
        metrics=metrics,
        size_bytes=1,
        latency_p99_ms=1.0,
        loadable=True,
        baseline_metrics=baseline,
    )


def _check(policy: dict[str, Any], evidence: Evidence, name: str) -> Any:
    decision = decide(GateConfig.model_validate(policy), evidence)
    return next(check for check in decision.checks if check.name == name)


def test_below_the_dummy_fails() -> None:
    """Accuracy 0.9448 against a dummy's 0.9452 fails, and the check carries both scores."""
    policy = {"thresholds": {"accuracy": ">= 0.9"}}
    check = _check(policy, _evidence({"accuracy": 0.9448}), "baseline:accuracy")
    assert not check.passed and check.value == 0.9448 and check.compared_with == 0.9452


def test_margin_is_required() -> None:
    """Beating the dummy by less than the margin fails; by more, passes."""
    policy = {"thresholds": {"accuracy": ">= 0.9"}, "baseline": {"margin": 0.01}}
    assert not _check(policy, _evidence({"accuracy": 0.95}), "baseline:accuracy").passed
    assert _check(policy, _evidence({"accuracy": 0.96}), "baseline:accuracy").passed


def test_lower_is_better_metrics_must_be_lower() -> None:
    """A log loss above the prior's fails the baseline check."""
    policy = {"baseline": {"metrics": ["log_loss"]}}
    assert not _check(policy, _evidence({"log_loss": 0.25}), "baseline:log_loss").passed


def test_default_metrics_are_the_gated_ones() -> None:
    """Without baseline.metrics, the threshold metrics are compared (and only they)."""
    policy = {"thresholds": {"roc_auc": ">= 0.6"}}
    evidence = _evidence({"roc_auc": 0.8, "accuracy": 0.5})
    names = [c.name for c in decide(GateConfig.model_validate(policy), evidence).checks]
    assert "baseline:roc_auc" in names and "baseline:accuracy" not in names


def test_baseline_can_be_turned_off() -> None:
    """`baseline: false` removes the check."""
    policy = GateConfig.model_validate({"thresholds": {"accuracy": ">= 0.9"}, "baseline": False})
    decision = decide(policy, _evidence({"accuracy": 0.9}))
    assert decision.passed and not [c for c in decision.checks if c.name.startswith("baseline")]


def test_version_without_a_baseline_is_not_judged() -> None:
    """An imported version has no trivial model: listed as not judged, never a failure."""
    policy = {"thresholds": {"accuracy": ">= 0.9"}}
    check = _check(policy, _evidence({"accuracy": 0.95}, None), "baseline:accuracy")
    assert not check.judged and check.outcome == "not judged" and check.passed


def _noise_body() -> str:
    body = loan_body(
        "gate:\n  thresholds: {accuracy: '>= 0.5'}\n",
    )
    return body.replace(
        "sklearn.ensemble.HistGradientBoostingClassifier\n    params: {max_iter: 20}",
        "sklearn.neighbors.KNeighborsClassifier\n    params: {n_neighbors: 1}",
    ).replace("  target: loan_status\n", "  target: loan_status\n  features: [noise]\n")


def _noise_project(make_project: MakeProject) -> Project:
    frame = loan_frame()
    frame["noise"] = np.random.default_rng(1).random(len(frame))
    return make_project(_noise_body(), files={"data/loans.csv": frame})


def test_a_model_worse_than_the_dummy_fails_the_gate(make_project: MakeProject) -> None:
    """1-nearest-neighbour on noise passes accuracy >= 0.5 but not the majority baseline."""
    project = _noise_project(make_project)
    result = train(project)
    holdout = load_holdout(project, Registry(project.store).record(result.version.version))
    majority = float(np.mean(holdout["loan_status"] == GOOD))
    checks = {check.name: check for check in result.decision.checks}
    assert checks["threshold:accuracy"].passed
    assert not checks["baseline:accuracy"].passed and not result.decision.passed
    assert checks["baseline:accuracy"].compared_with == pytest.approx(majority, abs=1e-6)


def test_cli_prints_both_scores(make_project: MakeProject) -> None:
    """`keel train` prints the baseline line with the candidate's and the dummy's scores."""
    project = _noise_project(make_project)
    done = subprocess.run(
        [sys.executable, "-m", "keel", "train", "--project", str(project.root)],
        capture_output=True,
        text=True,
    )
    line = next(row for row in done.stdout.splitlines() if "baseline:accuracy" in row)
    assert done.returncode == 2
    assert "✗" in line and "DummyClassifier(strategy='prior') scored" in line


def test_regressor_is_compared_with_the_mean(make_project: MakeProject) -> None:
    """A regressor's baseline predicts the training mean: its MAE is computed here."""
    frame = loan_frame()
    body = (
        loan_body("gate:\n  thresholds: {mae: '<= 100'}\n")
        .replace("target: loan_status", "target: income\n  exclude: [loan_status]")
        .replace("HistGradientBoostingClassifier", "HistGradientBoostingRegressor")
        .replace(
            "metrics: [roc_auc, average_precision, accuracy, log_loss, brier, precision, "
            "recall, f1]",
            "metrics: [mae]",
        )
    )
    project = make_project(body, files={"data/loans.csv": frame})
    result = train(project)
    holdout = load_holdout(project, Registry(project.store).record(result.version.version))
    train_mean = (frame["income"].sum() - holdout["income"].sum()) / (len(frame) - len(holdout))
    expected = float(np.mean(np.abs(holdout["income"] - train_mean)))
    check = next(c for c in result.decision.checks if c.name == "baseline:mae")
    assert check.compared_with == pytest.approx(expected, abs=1e-5)
