"""The positive class: the minority of the training labels by default, or configured.

The data is a loan table with a 5% minority ("Charged Off") whose label sorts first, so
the old rule (the label that sorts last) would have called the 95% majority positive.
Every metric is recomputed here with scikit-learn's ``pos_label``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from keel.errors import ConfigError, TrainingDataError
from keel.project import Project
from keel.training import model_classes, train
from keel.training.artifact import load_bundle
from keel.training.gating import load_holdout
from keel.training.inputs import prepare
from keel.training.registry import Registry

MakeProject = Callable[..., Project]
BAD, GOOD = "Charged Off", "Fully Paid"


def loan_frame(rows: int = 2000, minority: float = 0.05, seed: int = 3) -> pd.DataFrame:
    """Loans whose status depends on income and grade; exactly ``minority`` charged off."""
    rng = np.random.default_rng(seed)
    income = rng.normal(60, 15, rows).round(1)
    grade = rng.choice(list("ABCD"), rows)
    risk = -(income - 60) / 10 + (grade == "D") * 1.5 + rng.normal(0, 1, rows)
    bad = np.argsort(np.argsort(-risk)) < round(rows * minority)
    return pd.DataFrame({"income": income, "grade": grade, "loan_status": np.where(bad, BAD, GOOD)})


def loan_body(extra: str = "", data: str = "data/loans.csv") -> str:
    return (
        "training:\n"
        f"  data: {data}\n"
        "  target: loan_status\n"
        "  model:\n"
        "    estimator: sklearn.ensemble.HistGradientBoostingClassifier\n"
        "    params: {max_iter: 20}\n"
        "  split: {by: random, test_size: 0.25}\n"
        "  metrics: [roc_auc, average_precision, accuracy, log_loss, brier, precision, "
        "recall, f1]\n"
        f"{extra}"
    )


def _trained(make_project: MakeProject, frame: pd.DataFrame, extra: str = "") -> Any:
    project = make_project(loan_body(extra), files={"data/loans.csv": frame})
    return project, train(project)


def _holdout_proba(project: Project, version: int, label: Any) -> tuple[Any, Any]:
    """Held-out labels and the probability of ``label``, straight from the estimator."""
    registry = Registry(project.store)
    record = registry.record(version)
    bundle = load_bundle(project.artifacts, record["artifact"]["sha256"])
    holdout = load_holdout(project, record)
    proba = bundle["model"].predict_proba(prepare(holdout, bundle["schema"]))
    column = list(bundle["model"].classes_).index(label)
    return holdout["loan_status"].to_numpy(), proba[:, column]


def test_default_positive_is_the_minority_class(make_project: MakeProject) -> None:
    """With 5% charged off, 'Charged Off' is positive though 'Fully Paid' sorts last."""
    _, result = _trained(make_project, loan_frame())
    assert result.classes.positive == BAD
    assert "minority" in result.classes.chosen_by


def test_recorded_counts_are_the_training_labels(make_project: MakeProject) -> None:
    """The recorded class counts add up to the training rows, 5% of them charged off."""
    frame = loan_frame()
    _, result = _trained(make_project, frame)
    counts = dict(zip(result.classes.classes, result.classes.counts, strict=True))
    assert sum(counts.values()) == result.version.to_dict()["data_rows"] - round(len(frame) / 4)
    assert counts[BAD] / sum(counts.values()) == pytest.approx(0.05, abs=0.02)


def test_binary_metrics_are_about_the_positive_class(make_project: MakeProject) -> None:
    """Every binary metric equals scikit-learn's with pos_label='Charged Off'."""
    project, result = _trained(make_project, loan_frame())
    y, p = _holdout_proba(project, result.version.version, BAD)
    predicted = np.where(p >= 0.5, BAD, GOOD)
    expected = {
        "roc_auc": skm.roc_auc_score(y == BAD, p),
        "average_precision": skm.average_precision_score(y, p, pos_label=BAD),
        "accuracy": skm.accuracy_score(y, predicted),
        "log_loss": skm.log_loss(y == BAD, p),
        "brier": skm.brier_score_loss(y, p, pos_label=BAD),
        "precision": skm.precision_score(y, predicted, pos_label=BAD, zero_division=0),
        "recall": skm.recall_score(y, predicted, pos_label=BAD, zero_division=0),
        "f1": skm.f1_score(y, predicted, pos_label=BAD, zero_division=0),
    }
    assert result.version.metrics == pytest.approx(expected, abs=1e-6)


def test_average_precision_is_not_the_majority_s(make_project: MakeProject) -> None:
    """Average precision is far below the 0.95+ the majority class would score."""
    project, result = _trained(make_project, loan_frame())
    y, p = _holdout_proba(project, result.version.version, GOOD)
    majority_ap = skm.average_precision_score(y, p, pos_label=GOOD)
    assert majority_ap > 0.95
    assert result.version.metrics["average_precision"] < majority_ap - 0.1


def test_reference_scores_are_the_positive_probability(make_project: MakeProject) -> None:
    """Monitoring's reference predictions summarise P('Charged Off'), not P('Fully Paid')."""
    project, result = _trained(make_project, loan_frame())
    _, p = _holdout_proba(project, result.version.version, BAD)
    reference = Registry(project.store).record(result.version.version)["reference"]
    assert reference["predictions"]["mean"] == pytest.approx(float(np.mean(p)))


def test_artifact_and_record_carry_the_positive_class(make_project: MakeProject) -> None:
    """The artifact's metadata and the registry record both name the positive class."""
    project, result = _trained(make_project, loan_frame())
    record = Registry(project.store).record(result.version.version)
    bundle = load_bundle(project.artifacts, record["artifact"]["sha256"])
    assert bundle["positive"] == BAD and bundle["classes"]["positive"] == BAD
    assert record["positive"] == BAD and record["classes"]["positive"] == BAD


def test_model_classes_answers_from_the_registry(make_project: MakeProject) -> None:
    """model_classes gives other layers the classes and positive class of a version."""
    project, result = _trained(make_project, loan_frame())
    found = model_classes(project, result.version.version)
    assert found.classes == (BAD, GOOD) and found.positive == BAD and found.binary


def test_served_score_is_the_positive_probability(make_project: MakeProject) -> None:
    """The served probability (the logged score) is P('Charged Off') from the estimator."""
    from keel.serving.source import RegistrySource

    project, result = _trained(make_project, loan_frame())
    _, p = _holdout_proba(project, result.version.version, BAD)
    holdout = load_holdout(project, Registry(project.store).record(result.version.version))
    backend = RegistrySource(project).load(str(result.version.version))
    try:
        rows = holdout[["income", "grade"]].head(20).to_dict("records")
        scores = [answer.score for answer in backend.predict_now(rows)]
    finally:
        backend.close()
    assert scores == pytest.approx(list(p[:20]))


def test_configured_positive_class_wins(make_project: MakeProject) -> None:
    """training.positive_class names the majority: metrics follow it (recall of 'Fully Paid')."""
    project, result = _trained(make_project, loan_frame(), "  positive_class: Fully Paid\n")
    y, p = _holdout_proba(project, result.version.version, GOOD)
    predicted = np.where(p >= 0.5, GOOD, BAD)
    assert result.classes.positive == GOOD
    assert result.version.metrics["recall"] == pytest.approx(
        skm.recall_score(y, predicted, pos_label=GOOD), abs=1e-6
    )


def test_yaml_yes_names_the_text_label(make_project: MakeProject) -> None:
    """An unquoted `positive_class: No` (YAML's false) names the text label 'No'."""
    frame = loan_frame()
    frame["loan_status"] = np.where(frame["loan_status"] == BAD, "Yes", "No")
    _, result = _trained(make_project, frame, "  positive_class: No\n")
    assert result.classes.positive == "No"


def test_bool_labels_minority(make_project: MakeProject) -> None:
    """A bool target whose minority is False gets False as its positive class."""
    frame = loan_frame()
    frame["loan_status"] = frame["loan_status"] == GOOD
    _, result = _trained(make_project, frame)
    assert result.classes.positive is False


def test_positive_class_not_a_label(make_project: MakeProject) -> None:
    """A positive_class that is no label is one sentence naming the setting and the labels."""
    with pytest.raises(ConfigError, match=r"training\.positive_class: 'Default' is not a label"):
        _trained(make_project, loan_frame(), "  positive_class: Default\n")


def test_one_class_target(make_project: MakeProject) -> None:
    """A target with one class is one sentence naming the target, not a fit traceback."""
    frame = loan_frame()
    frame["loan_status"] = GOOD
    with pytest.raises(TrainingDataError, match="target 'loan_status' has one class"):
        _trained(make_project, frame)


def _three_classes() -> pd.DataFrame:
    frame = loan_frame()
    frame.loc[frame["grade"] == "A", "loan_status"] = "Current"
    return frame


def test_three_text_classes_train_as_multiclass(make_project: MakeProject) -> None:
    """Three text labels train; accuracy and log loss match scikit-learn's multiclass ones."""
    project, result = _trained(make_project, _three_classes())
    record = Registry(project.store).record(result.version.version)
    bundle = load_bundle(project.artifacts, record["artifact"]["sha256"])
    holdout = load_holdout(project, record)
    proba = bundle["model"].predict_proba(prepare(holdout, bundle["schema"]))
    y, classes = holdout["loan_status"].to_numpy(), bundle["model"].classes_
    assert result.classes.positive is None and len(result.classes.classes) == 3
    assert result.version.metrics["accuracy"] == pytest.approx(
        skm.accuracy_score(y, classes[proba.argmax(axis=1)]), abs=1e-6
    )
    assert result.version.metrics["log_loss"] == pytest.approx(
        skm.log_loss(y, proba, labels=classes), abs=1e-6
    )


def test_positive_class_on_multiclass_is_an_error(make_project: MakeProject) -> None:
    """positive_class set on a three-class target is an error naming the setting."""
    with pytest.raises(ConfigError, match=r"training\.positive_class: .* binary targets only"):
        _trained(make_project, _three_classes(), "  positive_class: Current\n")


def test_cli_train_reports_the_positive_class(make_project: MakeProject) -> None:
    """`keel train` says which class is positive and why; --json carries it too."""
    project = make_project(loan_body(), files={"data/loans.csv": loan_frame()})
    root = str(project.root)
    people = subprocess.run(
        [sys.executable, "-m", "keel", "train", "--project", root],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    machine = subprocess.run(
        [sys.executable, "-m", "keel", "train", "--project", root, "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "positive class: 'Charged Off' (the minority class" in people
    assert json.loads(machine)["classes"]["positive"] == BAD


def test_cli_bad_positive_class_is_one_line(make_project: MakeProject) -> None:
    """A positive_class that is not a label fails `keel train` with one line, no traceback."""
    project = make_project(
        loan_body("  positive_class: Default\n"), files={"data/loans.csv": loan_frame()}
    )
    done = subprocess.run(
        [sys.executable, "-m", "keel", "train", "--project", str(project.root)],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "positive_class" in done.stderr


def test_registry_show_names_the_positive_class(make_project: MakeProject) -> None:
    """`keel registry show` prints the version's positive class, read from its record."""
    project, result = _trained(make_project, loan_frame())
    version, root = str(result.version.version), str(project.root)
    shown = subprocess.run(
        [sys.executable, "-m", "keel", "registry", "show", version, "--project", root],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "positive class: 'Charged Off'" in shown


def test_artifacts_without_recorded_classes_keep_the_last_label() -> None:
    """An artifact from before classes were recorded answers with the class it was scored on."""
    from sklearn.linear_model import LogisticRegression

    from keel.training.classes import classes_from_bundle

    model = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0]]), ["No", "Yes", "Yes"])
    old = {"task": "classification", "positive": "Yes", "model": model}
    assert classes_from_bundle(old).classes == ("No", "Yes")
    assert classes_from_bundle(old).positive == "Yes"
