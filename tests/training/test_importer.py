"""``keel registry import``: a pilot model joins the registry with references and a gate."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import joblib
import pytest
from sklearn.linear_model import LogisticRegression

from keel.errors import ModelLoadError, TrainingDataError
from keel.project import Project
from keel.training import Registry, import_model, run_gate
from tests.training.conftest import churn_frame

MakeProject = Callable[..., Project]


def _pilot(root: Path, suffix: str) -> tuple[Path, Path]:
    frame = churn_frame(200)[["age", "spend", "churned"]]
    model = LogisticRegression().fit(frame[["age", "spend"]], frame["churned"])
    path = root / f"pilot{suffix}"
    if suffix == ".joblib":
        joblib.dump(model, path)
    else:
        path.write_bytes(pickle.dumps(model))
    frame.to_csv(root / "sample.csv", index=False)
    return path, root / "sample.csv"


@pytest.mark.parametrize("suffix", [".joblib", ".pkl"])
def test_import_registers_a_version(make_project: MakeProject, suffix: str) -> None:
    """An imported pilot becomes a candidate with metrics measured on the sample."""
    project = make_project("")
    model, sample = _pilot(project.root, suffix)
    version = import_model(project, model, sample, "churned", None)
    assert version.source == "import" and version.metrics["roc_auc"] is not None
    record = Registry(project.store).record(version.version)
    assert set(record["reference"]["features"]) == {"age", "spend"}


def test_imported_version_can_be_gated(make_project: MakeProject) -> None:
    """The sample is stored as held-out rows, so the gate runs on an imported version."""
    project = make_project("")
    model, sample = _pilot(project.root, ".pkl")
    version = import_model(project, model, sample, "churned", None)
    assert run_gate(project, version.version).passed


def test_schema_file_selects_features(make_project: MakeProject) -> None:
    """A schema file lists the feature columns; a missing one is named."""
    project = make_project("")
    model, sample = _pilot(project.root, ".pkl")
    (project.root / "schema.yaml").write_text("features: [age, spend, height]\n")
    with pytest.raises(TrainingDataError, match="lacks the schema's columns height"):
        import_model(project, model, sample, "churned", project.root / "schema.yaml")


def test_a_pickle_that_is_not_a_model(make_project: MakeProject) -> None:
    """A pickle holding something without predict() is refused."""
    project = make_project("")
    _, sample = _pilot(project.root, ".pkl")
    (project.root / "data.pkl").write_bytes(pickle.dumps({"weights": [1, 2]}))
    with pytest.raises(ModelLoadError, match="not a model"):
        import_model(project, project.root / "data.pkl", sample, "churned", None)


def test_a_file_that_is_not_a_pickle(make_project: MakeProject) -> None:
    """Bytes that do not unpickle are a ModelLoadError naming the file."""
    project = make_project("")
    _, sample = _pilot(project.root, ".pkl")
    (project.root / "junk.pkl").write_bytes(b"not a pickle at all")
    with pytest.raises(ModelLoadError, match=r"junk\.pkl does not load"):
        import_model(project, project.root / "junk.pkl", sample, "churned", None)
