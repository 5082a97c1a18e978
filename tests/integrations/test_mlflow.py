"""MLflow both ways, with the real library: models logged by MLflow imported into the
registry, and a Keel version exported as a model MLflow's pyfunc loads and predicts with."""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from keel.errors import ModelLoadError
from keel.project import Project
from keel.training import Registry
from tests.helpers import keel

mlflow = pytest.importorskip("mlflow")
pytestmark = pytest.mark.filterwarnings(
    "ignore:The ``noload`` loader strategy is deprecated",  # inside MLflow's own SQL store
    "ignore:Saving scikit-learn models in the pickle",
    "ignore:.*Any type hint is inferred as AnyType",  # MLflow's pyfunc module, on import
    "ignore:.*Decorate your function with",
)


def _table(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    """Two numeric features, a text plan, a column no model uses, `Yes`/`No` labels."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(1, 72, rows).astype(float),
            "spend": rng.normal(50, 10, rows).round(2),
            "note": [f"n{i}" for i in range(rows)],
        }
    )
    logit = (frame["spend"] - 50) / 5 - (frame["tenure"] - 36) / 20
    frame["churned"] = np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), "Yes", "No")
    return frame


FEATURES = ["tenure", "spend"]


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An MLflow tracking store in a SQLite file, its artifacts beside it (never in the
    working directory), for this module's runs."""
    folder = tmp_path_factory.mktemp("mlflow")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'runs.db'}")
    experiment = mlflow.create_experiment("keel", artifact_location=(folder / "runs").as_uri())
    mlflow.set_experiment(experiment_id=experiment)
    yield str(folder)
    mlflow.set_tracking_uri(previous)


@pytest.fixture
def project(project_dir: Path) -> Iterator[Project]:
    (project_dir / "keel.yaml").write_text("name: churn\n")
    with Project.open(project_dir) as opened:
        yield opened


def _sample(folder: Path, frame: pd.DataFrame) -> Path:
    path = folder / "sample.csv"
    frame.to_csv(path, index=False)
    return path


def _logged_run(frame: pd.DataFrame) -> tuple[str, Any]:
    """A LogisticRegression logged in an MLflow run with params, a metric and a signature."""
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=0.5, max_iter=500).fit(frame[FEATURES], frame["churned"])
    signature = infer_signature(frame[FEATURES], model.predict(frame[FEATURES]))
    with mlflow.start_run() as run:
        mlflow.log_params({"C": 0.5, "max_iter": 500})
        mlflow.log_metric("val_auc", 0.81)
        mlflow.sklearn.log_model(
            model, name="model", signature=signature, serialization_format="cloudpickle"
        )
    return run.info.run_id, model


def test_a_run_s_model_imports_with_its_signature_params_and_metrics(
    project: Project, tracking: str, tmp_path: Path
) -> None:
    """runs:/ID/model: the signature's two columns are the features (not the sample's
    extra column), and the run's params and metrics are in the version's lineage."""
    from keel.integrations.mlflow import import_mlflow

    frame = _table()
    run_id, _ = _logged_run(frame)
    version = import_mlflow(project, f"runs:/{run_id}/model", _sample(tmp_path, frame), "churned")
    record = Registry(project.store).record(version.version)
    assert record["training"]["features"] == FEATURES
    lineage = record["training"]["mlflow"]
    assert (lineage["flavor"], lineage["run_id"]) == ("sklearn", run_id)
    assert lineage["params"] == {"C": "0.5", "max_iter": "500"}
    assert lineage["metrics"] == {"val_auc": 0.81}
    assert record["classes"]["classes"] == ["No", "Yes"]


@pytest.mark.parametrize("flavor", ["xgboost", "lightgbm"])
def test_booster_flavours_import_from_a_model_folder_through_the_cli(
    project: Project, tmp_path: Path, flavor: str
) -> None:
    """A model folder saved by mlflow.xgboost / mlflow.lightgbm: `keel registry import`
    registers it, and the registered model's probabilities are the library's own."""
    library = pytest.importorskip(flavor)
    frame = _table(seed=1)
    labels = (frame["churned"] == "Yes").astype(int)
    if flavor == "xgboost":
        model = library.XGBClassifier(n_estimators=20).fit(frame[FEATURES], labels)
    else:
        model = library.LGBMClassifier(n_estimators=20, verbose=-1).fit(frame[FEATURES], labels)
    folder = tmp_path / "exported"
    options = {"serialization_format": "cloudpickle"} if flavor == "lightgbm" else {}
    getattr(mlflow, flavor).save_model(model, str(folder), **options)
    sample = frame[FEATURES].assign(churned=labels)
    done = keel("registry", "import", str(folder), "--sample", str(_sample(tmp_path, sample)),
                "--target", "churned", "--json", "-p", str(project.root))  # fmt: skip
    assert done.returncode == 0, done.stderr
    version = json.loads(done.stdout)["version"]
    imported = _artifact_model(project, version)
    expected = model.predict_proba(frame[FEATURES])
    np.testing.assert_allclose(imported.predict_proba(frame[FEATURES]), expected, rtol=1e-6)


def _artifact_model(project: Project, version: int) -> Any:
    digest = Registry(project.store).get(version).artifact
    return pickle.loads(project.artifacts.get_bytes(digest))["model"]


def test_a_folder_without_a_signature_uses_the_sample_columns_and_says_so(
    project: Project, tmp_path: Path
) -> None:
    """No signature: every sample column but the target is a feature, on record."""
    from sklearn.tree import DecisionTreeClassifier

    from keel.integrations.mlflow import import_mlflow

    frame = _table(seed=2)[[*FEATURES, "churned"]]
    model = DecisionTreeClassifier(max_depth=3).fit(frame[FEATURES], frame["churned"])
    folder = tmp_path / "plain"
    mlflow.sklearn.save_model(model, str(folder), serialization_format="cloudpickle")
    version = import_mlflow(project, str(folder), _sample(tmp_path, frame), "churned")
    training = Registry(project.store).record(version.version)["training"]
    assert training["features"] == FEATURES
    assert training["mlflow"]["schema_from"] == "sample (no MLflow signature)"


def test_an_unsupported_flavour_is_refused_in_one_sentence_naming_it(
    project: Project, tmp_path: Path
) -> None:
    """A python_function-only model: refused, the message names its flavour and the ones
    Keel imports."""
    from keel.integrations.mlflow import import_mlflow

    def constant(model_input: list[float]) -> list[float]:
        return [0.0] * len(model_input)

    folder = tmp_path / "custom"
    mlflow.pyfunc.save_model(str(folder), python_model=constant, input_example=[1.0])
    with pytest.raises(ModelLoadError, match=r"python_function only.*sklearn, xgboost, lightgbm"):
        import_mlflow(project, str(folder), _sample(tmp_path, _table()), "churned")


def test_an_exported_version_predicts_in_mlflow_as_the_model_does(
    project: Project, tmp_path: Path
) -> None:
    """`keel registry export V --format mlflow DIR`: pyfunc.load_model answers each row
    with the model's own label and the probability of the positive class (by default the
    minority label)."""
    from sklearn.linear_model import LogisticRegression

    from keel.integrations.mlflow import import_mlflow

    frame = _table(seed=3)[[*FEATURES, "churned"]]
    model = LogisticRegression(max_iter=500).fit(frame[FEATURES], frame["churned"])
    folder = tmp_path / "source"
    mlflow.sklearn.save_model(model, str(folder), serialization_format="cloudpickle")
    version = import_mlflow(project, str(folder), _sample(tmp_path, frame), "churned")
    out = tmp_path / "out"
    done = keel("registry", "export", str(version.version), str(out), "--format", "mlflow",
                "-p", str(project.root))  # fmt: skip
    assert done.returncode == 0, done.stderr
    answers = mlflow.pyfunc.load_model(str(out)).predict(frame[FEATURES])
    assert list(answers["prediction"]) == list(model.predict(frame[FEATURES]))
    counts = frame["churned"].value_counts()  # the positive class: the minority label
    positive = list(model.classes_).index(counts.idxmin())
    expected = model.predict_proba(frame[FEATURES])[:, positive]
    np.testing.assert_allclose(answers["probability"], expected)


def test_export_refuses_a_format_it_does_not_write_and_an_existing_folder(
    project: Project, tmp_path: Path
) -> None:
    """Each refusal is one sentence and nothing is written."""
    from keel.integrations.mlflow import import_mlflow

    frame = _table(seed=4)[[*FEATURES, "churned"]]
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path / "source"
    model = LogisticRegression().fit(frame[FEATURES], frame["churned"])
    mlflow.sklearn.save_model(model, str(folder), serialization_format="cloudpickle")
    import_mlflow(project, str(folder), _sample(tmp_path, frame), "churned")
    onnx = keel("registry", "export", "1", str(tmp_path / "x"), "--format", "onnx",
                "-p", str(project.root))  # fmt: skip
    assert onnx.returncode == 1 and "--format onnx is not a format" in onnx.stderr
    taken = keel("registry", "export", "1", str(folder), "-p", str(project.root))
    assert taken.returncode == 1 and "exists" in taken.stderr
    assert not (tmp_path / "x").exists()
