"""The bad input the training layer must survive, each with a clear outcome."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from keel.errors import (
    ArtifactCorrupt,
    ConfigError,
    EstimatorError,
    LeaseHeld,
    TrainingDataError,
)
from keel.project import Project
from keel.training import Registry, load_bundle, run_gate, train
from tests.helpers import without_module
from tests.training.conftest import GATE, TRAINING, churn_frame

MakeProject = Callable[..., Project]
SRC = str(Path(__file__).resolve().parents[2] / "src")
BOOM = """\
from sklearn.base import BaseEstimator, ClassifierMixin


class Boom(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        raise RuntimeError("the estimator exploded")
"""


def test_data_naming_no_source(make_project: MakeProject) -> None:
    """A training.data that names no source, file or callable fails loading keel.yaml."""
    with pytest.raises(ConfigError, match=r"training\.data: names 'v42', which is not a source"):
        make_project(TRAINING.replace("data/train.csv", "v42"))


def test_missing_data_file(make_project: MakeProject) -> None:
    """A data path that does not exist says which file and where it was looked for."""
    project = make_project(TRAINING.replace("data/train.csv", "data/nope.csv"))
    with pytest.raises(TrainingDataError, match=r"'data/nope\.csv', which does not exist"):
        train(project)


@pytest.mark.parametrize("path", ["sklearn.ensemble.NoSuchForest", "nosuchpackage.Model", "NoDots"])
def test_unknown_estimator_path(make_project: MakeProject, path: str) -> None:
    """An estimator path that does not import is an EstimatorError, not a traceback."""
    body = TRAINING.replace("sklearn.ensemble.HistGradientBoostingClassifier", path)
    with pytest.raises(EstimatorError):
        train(make_project(body))


def test_missing_extra_names_the_install(make_project: MakeProject, tmp_path: Path) -> None:
    """`keel train` with an XGBoost estimator where xgboost does not import (a folder ahead
    on the path stands in for an environment without it) names the pip extra in one line."""
    body = TRAINING.replace(
        "sklearn.ensemble.HistGradientBoostingClassifier", "xgboost.XGBClassifier"
    ).replace("{max_iter: 15}", "{}")
    project = make_project(body)
    hidden = without_module("xgboost", tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([hidden, SRC])}
    done = subprocess.run(
        [sys.executable, "-m", "keel", "train", "--project", str(project.root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 1
    assert "keel-ml[xgboost]" in done.stderr and "Traceback" not in done.stderr


def test_estimator_that_raises_in_fit(make_project: MakeProject) -> None:
    """An exception inside fit becomes an EstimatorError carrying its message."""
    project = make_project(
        TRAINING.replace("sklearn.ensemble.HistGradientBoostingClassifier", "boom.Boom").replace(
            "{max_iter: 15}", "{}"
        )
    )
    (project.root / "boom.py").write_text(BOOM)
    with pytest.raises(EstimatorError, match="failed while fitting: RuntimeError: the estimator"):
        train(project)
    assert Registry(project.store).versions() == []


def test_one_class_test_split_fails_the_gate(make_project: MakeProject) -> None:
    """When the held-out rows have one class, ROC AUC is undefined and the gate says so."""
    project = make_project(TRAINING + GATE)
    frame = churn_frame()
    frame.loc[frame.index >= 400, "churned"] = 0  # the latest quarter is all one class
    frame.to_csv(project.root / "data" / "train.csv", index=False)
    result = train(project)
    assert result.version.metrics["roc_auc"] is None
    assert result.decision is not None and not result.decision.passed
    failed = {c.name: c.detail for c in result.decision.failures}
    assert "undefined" in failed["threshold:roc_auc"]


def test_hard_examples_with_unknown_columns(make_project: MakeProject) -> None:
    """A hard-example file with columns the model does not know fails the gate by name."""
    hard = churn_frame(10).drop(columns=["ts"]).assign(shoe_size=42)
    body = TRAINING + GATE + "  hard_examples: {file: data/hard.csv}\n"
    project = make_project(body, files={"data/hard.csv": hard})
    decision = train(project).decision
    assert decision is not None
    [failure] = decision.failures
    assert failure.name == "hard_examples" and "unknown columns shoe_size" in failure.detail


def test_missing_slice_column_fails_the_gate(make_project: MakeProject) -> None:
    """A slice column the data does not have is a failed, recorded check, not a crash."""
    project = make_project(TRAINING + GATE.replace("column: region", "column: planet"))
    result = train(project)
    assert result.decision is not None
    assert [c.name for c in result.decision.failures] == ["slices"]
    assert Registry(project.store).get(result.version.version).gate_passed is False


def test_hard_examples_must_pass(make_project: MakeProject) -> None:
    """A must-pass hard example the model gets wrong fails the gate, named by id."""
    hard = pd.DataFrame(
        {
            "id": ["rich-north"],
            "age": [40],
            "spend": [90.0],
            "region": ["north"],
            "churned": [0],
            "must_pass": [True],
        }
    )
    body = TRAINING + GATE + "  hard_examples: {file: data/hard.csv}\n"
    project = make_project(body, files={"data/hard.csv": hard})
    decision = train(project).decision
    assert decision is not None
    check = next(c for c in decision.checks if c.name == "hard_examples:must_pass")
    assert not check.passed and "rich-north" in check.detail


def test_model_over_size_budget(make_project: MakeProject) -> None:
    """A model larger than gate.max_size_mb fails the size check."""
    project = make_project(TRAINING + GATE.replace("max_size_mb: 10", "max_size_mb: 0.001"))
    decision = train(project).decision
    assert decision is not None
    assert [c.name for c in decision.failures] == ["size_mb"]


def test_corrupted_artifact_is_refused(make_project: MakeProject) -> None:
    """A model artifact modified on disk is refused on load, and the gate fails loadable."""
    project = make_project(TRAINING + GATE)
    version = train(project).version
    path = project.artifacts.local_path(version.artifact)
    path.chmod(0o644)
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ArtifactCorrupt):
        load_bundle(project.artifacts, version.artifact)
    decision = run_gate(project, version.version)
    loadable = next(c for c in decision.checks if c.name == "loadable")
    assert not loadable.passed and "corrupt" in loadable.detail


def test_second_run_while_one_is_running(make_project: MakeProject) -> None:
    """While a training run holds the project's lease, another is told it is running."""
    project = make_project(TRAINING)
    with (
        project.store.leases.hold("keel:train:churn", ttl=30),
        pytest.raises(LeaseHeld, match="already running"),
    ):
        train(project)


def test_two_train_processes_at_once(make_project: MakeProject) -> None:
    """Two `keel train` started together: each succeeds or says a run is in progress."""
    project = make_project(TRAINING)
    env = {**os.environ, "PYTHONPATH": SRC}
    command = [sys.executable, "-m", "keel", "train", "--json", "--project", str(project.root)]
    runs = [
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for _ in range(2)
    ]
    outcomes = [run.communicate(timeout=120) for run in runs]
    codes = [run.returncode for run in runs]
    assert 0 in codes
    for code, (_, err) in zip(codes, outcomes, strict=True):
        assert code == 0 or ("already running" in err and err.count("\n") == 1)
    versions = [v.version for v in Registry(project.store).versions()]
    assert len(versions) == codes.count(0) and len(set(versions)) == len(versions)


def test_without_a_must_pass_column_every_row_must_pass(make_project: MakeProject) -> None:
    """With must_pass: true and no must_pass column, every hard example must pass."""
    hard = pd.DataFrame(
        {
            "id": ["a", "b"],
            "age": [40, 41],
            "spend": [90.0, 10.0],
            "region": ["north", "south"],
            "churned": [0, 0],
        }
    )
    body = TRAINING + GATE + "  hard_examples: {file: data/hard.csv}\n"
    decision = train(make_project(body, files={"data/hard.csv": hard})).decision
    assert decision is not None
    check = next(c for c in decision.checks if c.name == "hard_examples:must_pass")
    assert check.threshold == "0 of 2 fail" and "a" in check.detail


def test_rows_are_stored_from_a_temp_folder_with_a_quote_in_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A quote in TMPDIR cannot break the SQL that writes the rows' Parquet file."""
    import tempfile

    from keel.store.artifacts import ArtifactStore
    from keel.training.record import store_frame

    odd = tmp_path / "it's here"
    odd.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(odd))
    artifacts = ArtifactStore(tmp_path / "artifacts")
    digest = store_frame(artifacts, pd.DataFrame({"a": [1, 2, 3]}))
    import duckdb

    stored = tmp_path / "stored.parquet"
    stored.write_bytes(artifacts.get_bytes(digest))
    assert duckdb.sql(f"SELECT a FROM '{stored}' ORDER BY a").fetchall() == [(1,), (2,), (3,)]
