"""``train``: from a file path to a registered version with its full run record."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pandas as pd
import pytest

from keel.errors import ConfigError
from keel.project import Project
from keel.schema import TrainingConfig
from keel.training import Registry, train
from keel.training.pipeline import feature_columns
from tests.training.conftest import GATE, TRAINING

MakeProject = Callable[..., Project]


def test_train_registers_a_candidate(make_project: MakeProject, store_url: str) -> None:
    """Training on a CSV registers version 1 as a candidate with held-out metrics."""
    project = make_project(TRAINING, store_url)
    version = train(project).version
    assert (version.version, version.status, version.source) == (1, "candidate", "train")
    assert version.metrics["roc_auc"] is not None and version.data_rows == 600


def test_record_holds_lineage(make_project: MakeProject) -> None:
    """The run record names config hash, data, libraries, durations and the time range."""
    project = make_project(TRAINING)
    record = Registry(project.store).record(train(project).version.version)
    assert len(record["config_hash"]) == 64
    assert record["data"]["ref"].startswith("file:data/train.csv@sha256:")
    assert record["data"]["start"] == "2024-01-01 00:00:00"
    assert record["libraries"]["scikit-learn"] is not None
    assert record["duration_s"]["fit"] <= record["duration_s"]["total"]


def test_record_holds_references_and_schema(make_project: MakeProject) -> None:
    """Every feature and the predictions get reference statistics; the schema is stored."""
    project = make_project(TRAINING)
    record = Registry(project.store).record(train(project).version.version)
    assert set(record["reference"]["features"]) == {"age", "spend", "region"}
    assert record["reference"]["predictions"]["kind"] == "numeric"
    assert [c["name"] for c in record["schema"]] == ["age", "spend", "region"]
    assert record["calibration"]["bins"]


def test_git_commit_and_dirty_flag_are_recorded(make_project: MakeProject) -> None:
    """In a git repository the record names the commit and whether the tree is dirty."""
    project = make_project(TRAINING)
    git = ["git", "-C", str(project.root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "keel.yaml"], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    (project.root / "keel.yaml").write_text((project.root / "keel.yaml").read_text() + "\n")
    code = Registry(project.store).record(train(project).version.version)["code"]
    assert len(code["git_commit"]) == 40 and code["dirty"] is True


def test_gate_runs_after_training(make_project: MakeProject) -> None:
    """With a gate: section, training records a gate decision on the new version."""
    project = make_project(TRAINING + GATE)
    result = train(project)
    assert result.decision is not None and result.decision.passed
    assert Registry(project.store).gate_decision(result.version.version) is not None


def test_parquet_training_data(make_project: MakeProject) -> None:
    """A Parquet file (read through DuckDB) trains like the CSV."""
    project = make_project(TRAINING.replace("data/train.csv", "data/train.parquet"))
    import duckdb

    frame = pd.read_csv(project.root / "data" / "train.csv")
    with duckdb.connect() as connection:
        connection.register("f", frame)
        connection.execute(
            f"COPY f TO '{project.root / 'data' / 'train.parquet'}' (FORMAT parquet)"
        )
    assert train(project).version.data_ref.startswith("file:data/train.parquet")


def test_feature_columns_default_to_all_but_target_and_exclusions() -> None:
    """Without training.features, features are the columns not excluded, not target, not time."""
    frame = pd.DataFrame(columns=["id", "a", "b", "ts", "y"])
    config = TrainingConfig.model_validate(
        {"target": "y", "exclude": ["id"], "split": {"by": "time", "column": "ts"}}
    )
    assert feature_columns(frame, config) == ["a", "b"]


def test_regressor_gets_regression_metrics(make_project: MakeProject) -> None:
    """A regressor trained with the default metric list is scored with MAE, RMSE and R²."""
    body = TRAINING.replace("HistGradientBoostingClassifier", "HistGradientBoostingRegressor")
    version = train(make_project(body)).version
    assert set(version.metrics) == {"mae", "rmse", "r2"}


def test_unknown_metric_is_a_config_error(make_project: MakeProject) -> None:
    """A misspelt metric name is refused with the list of known ones."""
    project = make_project(TRAINING + "  metrics: [roc-auc]\n")
    with pytest.raises(ConfigError, match="unknown metrics roc-auc; choose from roc_auc"):
        train(project)


def test_unknown_metric_names_its_line_in_keel_yaml(make_project: MakeProject) -> None:
    """The misspelt metric, found only at training, is reported at training.metrics'
    line and column in keel.yaml."""
    project = make_project(TRAINING + "  metrics: [roc-auc]\n")
    with pytest.raises(ConfigError) as caught:
        train(project)
    lines = project.loaded.path.read_text(encoding="utf-8").splitlines()
    line = lines.index("  metrics: [roc-auc]") + 1
    [problem] = caught.value.problems
    assert (problem.file, problem.line, problem.column) == (str(project.loaded.path), line, 3)
    assert (problem.path, problem.message) == ("training.metrics", "names unknown metrics roc-auc")
