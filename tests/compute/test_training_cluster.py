"""``keel train`` with ``compute.engine: dask`` on the real cluster: XGBoost and LightGBM
train through their Dask interfaces on every training row, scikit-learn estimators on the
declared ``training.sample`` in this process, with their joblib jobs (a search's fits) on
the cluster; the artifact is a plain model that serves like any other.

The data has a known signal: the label is drawn from a logistic model of two numbers and a
text column, plus a noise column. Expected numbers come from scikit-learn and the
libraries themselves, never from Keel.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV

from keel.errors import TrainingDataError
from keel.project import Project
from keel.serving import create_app
from keel.training import Registry, deploy, train
from tests.compute.conftest import Cluster
from tests.helpers import free_port
from tests.serving.helpers import create_key, over_http

MODELS = {
    "xgboost": (
        "xgboost.XGBClassifier",
        {"n_estimators": 30, "max_depth": 3, "n_jobs": 1, "tree_method": "hist"},
        "XGBClassifier",
    ),
    "lightgbm": (
        "lightgbm.LGBMClassifier",
        {"n_estimators": 30, "num_leaves": 7, "n_jobs": 1, "verbose": -1},
        "LGBMClassifier",
    ),
}
GRID = {"C": [0.001, 0.01, 0.1, 1.0, 10.0]}
FOLDS = 4
SEARCH = f"""\
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV


def fit(X, y, params):
    X.assign(_label=y.to_numpy()).to_parquet(params["seen"])  # for the test to compare
    search = GridSearchCV(LogisticRegression(max_iter=1000), {GRID!r}, cv={FOLDS}, n_jobs=-1)
    return search.fit(X, y)
"""
PLANS = ["basic", "plus", "pro"]
NUMBERS = ["x1", "x2", "noise"]


def synthetic(rows: int, seed: int) -> pd.DataFrame:
    """x1 raises the odds of "yes", x2 lowers them, "pro" raises them; noise does nothing."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=rows),
            "x2": rng.normal(size=rows),
            "noise": rng.normal(size=rows),
            "plan": rng.choice(PLANS, rows),
        }
    )
    logit = 1.5 * frame["x1"] - frame["x2"] + np.where(frame["plan"] == "pro", 1.0, 0.0)
    chance = 1 / (1 + np.exp(-logit))
    frame["label"] = np.where(rng.uniform(size=rows) < chance, "yes", "no")
    return frame


def _project(root: Path, cluster: Cluster, model: dict[str, Any], rows: int) -> Path:
    (root / "data").mkdir(parents=True)
    synthetic(rows, seed=1).to_csv(root / "data" / "train.csv", index=False)
    config = {
        "name": "signal",
        "training": {
            "data": "data/train.csv",
            "target": "label",
            "positive_class": "yes",  # the served probability is of "yes"
            "model": model,
        },
        "compute": {"engine": "dask", "address": cluster.address, "partition_rows": 500},
        "serving": {"timeout_ms": 60000, "rate_limit": None},
    }
    for name in ("sample", "features"):
        if name in model:
            config["training"][name] = model.pop(name)
    (root / "keel.yaml").write_text(yaml.safe_dump(config))
    return root


def _model(project: Project, version: Any) -> Any:
    """The version's fitted model, unpickled from its artifact file by path."""
    path = project.artifacts.local_path(version.artifact)
    return pickle.loads(Path(path).read_bytes())["model"]


def _inputs(frame: pd.DataFrame) -> pd.DataFrame:
    """The model's input as pandas builds it: the text column as a categorical."""
    inputs = frame[["x1", "x2", "noise", "plan"]].copy()
    inputs["plan"] = pd.Categorical(inputs["plan"], categories=PLANS)
    return inputs


@pytest.mark.slow
@pytest.mark.parametrize("library", sorted(MODELS))
def test_a_booster_trains_on_the_cluster_and_serves_its_own_probabilities(
    library: str, cluster: Cluster, tmp_path: Path
) -> None:
    """The booster is fitted by its Dask interface on all 2,000 rows (4 partitions); the
    artifact holds the plain estimator; served probabilities over HTTP equal its
    predict_proba, and their ROC AUC on fresh rows (scikit-learn) shows the signal."""
    estimator, params, plain = MODELS[library]
    root = _project(tmp_path / library, cluster, {"estimator": estimator, "params": params}, 2500)
    fresh = synthetic(300, seed=2)
    with Project.open(root) as project:
        result = train(project)
        record = Registry(project.store).record(result.version.version)
        assert record["compute"] == {
            "engine": "dask",
            "workers": 2,
            "fit": "dask",
            "rows": 2000,
            "partitions": 4,
        }
        model = _model(project, result.version)
        fitted = getattr(model, "estimator_", model)
        assert type(fitted).__name__ == plain  # not the Dask twin
        deploy(project, str(result.version.version), force=True, reason="test")
        key = create_key(project, "predict")
        records = fresh.drop(columns="label").to_dict("records")
        with over_http(create_app(project)) as url:
            response = httpx.post(
                f"{url}/v1/predict",
                json={"instances": records},
                headers={"Authorization": f"Bearer {key}"},
                timeout=60,
            )
    assert response.status_code == 200, response.text
    served = np.array([p["probability"] for p in response.json()["predictions"]], dtype=float)
    expected = model.predict_proba(_inputs(fresh))[:, list(model.classes_).index("yes")]
    np.testing.assert_allclose(served, expected, atol=1e-6)
    assert roc_auc_score(fresh["label"] == "yes", served) > 0.8


def test_a_scikit_learn_estimator_fits_on_the_declared_sample(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A k-nearest-neighbours classifier under the dask engine is fitted in this process on
    ``training.sample`` rows (the estimator itself counts them), and still ranks by the
    signal."""
    spec = {
        "estimator": "sklearn.neighbors.KNeighborsClassifier",
        "params": {"n_neighbors": 15},
        "sample": 300,
        "features": NUMBERS,  # no text column: the classifier takes numbers only
    }
    root = _project(tmp_path / "knn", cluster, spec, 1000)
    fresh = synthetic(300, seed=3)
    with Project.open(root) as project:
        result = train(project)
        model = _model(project, result.version)
        record = Registry(project.store).record(result.version.version)
    assert model.n_samples_fit_ == 300
    assert record["compute"]["fit"] == "client"
    scores = model.predict_proba(fresh[NUMBERS])[:, list(model.classes_).index("yes")]
    assert roc_auc_score(fresh["label"] == "yes", scores) > 0.75


def test_a_booster_on_one_class_is_refused_before_the_cluster_is_asked(tmp_path: Path) -> None:
    """One class in the target: the same one sentence as locally, from a project whose
    scheduler address nobody listens on (so the check comes before connecting)."""
    root = tmp_path / "one"
    (root / "data").mkdir(parents=True)
    synthetic(50, seed=4).assign(label="yes").to_csv(root / "data" / "train.csv", index=False)
    config = {
        "name": "one",
        "training": {
            "data": "data/train.csv",
            "target": "label",
            "model": {"estimator": "xgboost.XGBClassifier", "params": {"n_estimators": 5}},
        },
        "compute": {"engine": "dask", "address": f"tcp://127.0.0.1:{free_port()}"},
    }
    (root / "keel.yaml").write_text(yaml.safe_dump(config))
    with Project.open(root) as project, pytest.raises(TrainingDataError, match="has one class"):
        train(project)


@contextmanager
def _joblib_calls(cluster: Cluster, function: str) -> Iterator[Callable[[], int]]:
    """How many calls of ``function`` joblib's Dask backend ran on the cluster inside the
    block: the tasks of the scheduler's task stream (every client's, kept in a buffer of
    100,000) whose keys joblib names ``batch_of_<function>_<calls>_calls-<uuid>``, or
    ``mixed_batch_of_...`` once its automatic batching changes the batch size."""
    from distributed import Client, get_task_stream

    batch = re.compile(rf"(?:mixed_)?batch_of_{re.escape(function)}_(\d+)_calls-")
    with (
        Client(cluster.address, timeout=30, set_as_default=False) as client,
        get_task_stream(client) as stream,
    ):
        yield lambda: sum(
            int(found.group(1))
            for task in stream.data
            if (found := batch.match(str(task["key"]))) is not None
        )


def test_a_search_runs_its_fits_on_the_cluster_and_equals_the_local_search(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A training function's ``GridSearchCV(n_jobs=-1)`` runs under joblib's Dask backend:
    its candidates x folds fits finish as tasks on the cluster's workers, and the search
    finds what scikit-learn finds locally on the same rows (best params, every mean
    score); the run record says so."""
    seen = tmp_path / "seen.parquet"
    spec = {"function": "searching:fit", "params": {"seen": str(seen)}, "features": NUMBERS}
    root = _project(tmp_path / "search", cluster, spec, 1000)
    (root / "searching.py").write_text(SEARCH)
    with _joblib_calls(cluster, "_fit_and_score") as calls, Project.open(root) as project:
        result = train(project)
        model = _model(project, result.version)
        record = Registry(project.store).record(result.version.version)
    assert calls() == len(GRID["C"]) * FOLDS
    rows = pd.read_parquet(seen)
    X, y = rows.drop(columns="_label"), rows["_label"]
    local = GridSearchCV(LogisticRegression(max_iter=1000), GRID, cv=FOLDS, n_jobs=1).fit(X, y)
    search = getattr(model, "estimator_", model)
    assert search.best_params_ == local.best_params_
    np.testing.assert_allclose(
        search.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"], atol=1e-12
    )
    assert record["compute"] == {
        "engine": "dask",
        "fit": "client",
        "joblib": "dask",
        "workers": 2,
        "rows": len(X),
    }


def test_an_estimator_with_n_jobs_builds_its_trees_on_the_cluster(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A random forest declared in keel.yaml with ``n_jobs: -1`` builds each of its trees
    as a joblib task on the cluster (the scheduler counts ``n_estimators`` builds), and
    ranks fresh rows by the signal."""
    params = {"n_estimators": 12, "max_depth": 4, "n_jobs": -1}
    spec = {"estimator": "sklearn.ensemble.RandomForestClassifier", "params": params}
    root = _project(tmp_path / "forest", cluster, {**spec, "features": NUMBERS}, 1000)
    with _joblib_calls(cluster, "_parallel_build_trees") as calls, Project.open(root) as project:
        model = _model(project, train(project).version)
    assert calls() == params["n_estimators"]
    fresh = synthetic(300, seed=5)
    scores = model.predict_proba(fresh[NUMBERS])[:, list(model.classes_).index("yes")]
    assert roc_auc_score(fresh["label"] == "yes", scores) > 0.75
