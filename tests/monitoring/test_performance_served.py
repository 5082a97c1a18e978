"""`keel performance` on predictions served over HTTP by a registered model, labels fed back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score
from sklearn.svm import LinearSVC
from typer.testing import CliRunner

from keel.cli.main import app
from keel.project import Project
from tests.monitoring.served import CONFIG, frame, keel, register, serve, write_feedback
from tests.serving.helpers import FEATURES


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def project(project_dir: Path) -> Iterator[Project]:
    """A project whose production model is served from the registry."""
    (project_dir / "keel.yaml").write_text(CONFIG)
    with Project.open(project_dir) as opened:
        yield opened


def _yes_no_model(seed: int = 0) -> LogisticRegression:
    train = frame(600, seed)
    return LogisticRegression(max_iter=500).fit(train[FEATURES], train["churned"])


@pytest.mark.anyio
async def test_realised_metrics_match_scikit_learn_on_served_rows(
    project: Project, tmp_path: Path
) -> None:
    """Yes/No labels: ROC AUC, log loss and Brier from the served probabilities agree with
    scikit-learn on the same rows (the positive class is the model's, 'Yes')."""
    register(project, tmp_path, _yes_no_model(), frame(200, seed=1))
    served = await serve(project, frame(1_000, seed=2))
    root = project.root
    write_feedback(tmp_path / "truth.csv", served.ids, served.truth)
    keel("feedback", str(tmp_path / "truth.csv"), "--project", str(root))
    data = keel("performance", "--project", str(root))
    y = np.array(served.truth) == "Yes"
    p = np.array(served.probability, dtype=float)
    assert data["estimated"] is False and data["labelled"] == 1_000
    assert data["positive"] == "Yes"
    assert data["metrics"]["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=0.01)
    assert data["metrics"]["log_loss"] == pytest.approx(log_loss(y, p), abs=0.01)
    assert data["metrics"]["brier"] == pytest.approx(brier_score_loss(y, p), abs=0.01)
    assert data["metrics"]["accuracy"] == pytest.approx(
        accuracy_score(served.truth, served.served), abs=1e-9
    )


@pytest.mark.anyio
async def test_performance_on_string_labels_prints_metrics_not_a_traceback(
    project: Project, tmp_path: Path
) -> None:
    """`keel performance` with Yes/No labels and no options exits 0 with realised AUC
    (it used to read the logged label as a score: "could not convert string to float")."""
    register(project, tmp_path, _yes_no_model(), frame(200, seed=1))
    served = await serve(project, frame(300, seed=3))
    write_feedback(tmp_path / "truth.csv", served.ids, served.truth)
    keel("feedback", str(tmp_path / "truth.csv"), "--project", str(project.root))
    result = CliRunner().invoke(app, ["performance", "--project", str(project.root)])
    assert result.exit_code == 0, result.output
    assert "realised from labels" in result.output and "roc_auc:" in result.output


@pytest.mark.anyio
async def test_the_label_delay_comes_from_the_labels_received(
    project: Project, tmp_path: Path
) -> None:
    """Without a configured delay, labels that came within seconds make the window mature:
    realised, not estimated behind a 30-day constant, and the output says which delay."""
    register(project, tmp_path, _yes_no_model(), frame(200, seed=1))
    served = await serve(project, frame(200, seed=4))
    write_feedback(tmp_path / "truth.csv", served.ids, served.truth)
    keel("feedback", str(tmp_path / "truth.csv"), "--project", str(project.root))
    data = keel("performance", "--project", str(project.root))
    assert data["mature"] is True and data["estimated"] is False
    assert data["label_delay_source"] == "median delay of the 200 labels received"
    assert 0 <= data["label_delay_s"] < 600


@pytest.mark.anyio
async def test_before_any_label_the_estimate_uses_probabilities_and_says_so(
    project: Project, tmp_path: Path
) -> None:
    """With no labels yet: an estimate, flagged as one, from the served probabilities
    (not the served labels, which would give AUC 1), under the default delay."""
    register(project, tmp_path, _yes_no_model(), frame(200, seed=1))
    await serve(project, frame(400, seed=5))
    data = keel("performance", "--project", str(project.root))
    assert data["estimated"] is True and "calibrated" in data["assumptions"]
    assert data["label_delay_source"] == "default: no labels received yet"
    assert data["label_delay_s"] == 30 * 86400
    assert 0.55 < data["metrics"]["roc_auc"] < 0.95


@pytest.mark.anyio
async def test_a_model_without_predict_proba_is_not_estimated(
    project: Project, tmp_path: Path
) -> None:
    """LinearSVC gives labels only: no estimate (its reason stated), and once labels
    come, accuracy and F1 only, never an AUC from hard labels."""
    train = frame(600, seed=0, classes=(0, 1))
    model = LinearSVC().fit(train[FEATURES], train["churned"])
    register(project, tmp_path, model, frame(200, seed=1, classes=(0, 1)))
    served = await serve(project, frame(300, seed=6, classes=(0, 1)))
    before = keel("performance", "--project", str(project.root))
    write_feedback(tmp_path / "truth.csv", served.ids, served.truth)
    keel("feedback", str(tmp_path / "truth.csv"), "--project", str(project.root))
    after = keel("performance", "--project", str(project.root))
    assert before["estimated"] is False and before["metrics"] == {}
    assert "no predict_proba" in before["notes"][0]
    expected = accuracy_score(served.truth, [int(v) for v in served.served])
    assert set(after["metrics"]) == {"accuracy", "f1"}
    assert after["metrics"]["accuracy"] == pytest.approx(expected)


@pytest.mark.anyio
async def test_labels_the_model_never_saw_are_counted_not_guessed(
    project: Project, tmp_path: Path
) -> None:
    """Labels that are none of the model's classes ('maybe') are counted and shown with
    an example; the metrics use the rows whose labels match."""
    register(project, tmp_path, _yes_no_model(), frame(200, seed=1))
    served = await serve(project, frame(300, seed=7))
    labels = ["maybe" if i % 10 == 0 else t for i, t in enumerate(served.truth)]
    write_feedback(tmp_path / "truth.csv", served.ids, labels)
    keel("feedback", str(tmp_path / "truth.csv"), "--project", str(project.root))
    data = keel("performance", "--project", str(project.root))
    kept = [i for i in range(300) if i % 10]
    y = np.array([served.truth[i] == "Yes" for i in kept])
    p = np.array([served.probability[i] for i in kept], dtype=float)
    assert (data["unmatched"], data["unmatched_examples"], data["labelled"]) == (30, ["maybe"], 270)
    assert data["metrics"]["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-9)


@pytest.mark.anyio
async def test_a_positive_class_that_sorts_first_is_the_one_scored(
    project: Project, tmp_path: Path
) -> None:
    """Left/Stayed labels with 'Left' the minority: the version's positive class is 'Left'
    (it sorts first), the server scores P(Left), and realised ROC AUC is about 'Left' too,
    as scikit-learn computes it on the same rows (taking the last class would invert it)."""
    sample = frame(200, seed=1, classes=("Stayed", "Left"))
    assert (sample["churned"] == "Left").mean() < 0.5
    model = LogisticRegression(max_iter=500).fit(sample[FEATURES], sample["churned"])
    register(project, tmp_path, model, sample)
    served = await serve(project, frame(1_000, seed=2, classes=("Stayed", "Left")))
    write_feedback(tmp_path / "truth.csv", served.ids, served.truth)
    keel("feedback", str(tmp_path / "truth.csv"), "--project", str(project.root))
    data = keel("performance", "--project", str(project.root))
    y = np.array(served.truth) == "Left"
    p = np.array(served.probability, dtype=float)
    assert data["positive"] == "Left"
    assert roc_auc_score(y, p) > 0.6
    assert data["metrics"]["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=0.01)
