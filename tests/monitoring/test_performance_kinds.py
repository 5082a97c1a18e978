"""Multiclass and regression performance: from logged class probabilities and values."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, log_loss, mean_absolute_error, r2_score

from keel.monitoring.performance import Joined, join_feedback, window_performance
from keel.project import Project
from tests.monitoring.served import CONFIG, keel, register, serve, write_feedback
from tests.serving.helpers import FEATURES

CLASSES = ["bronze", "gold", "silver"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def project(project_dir: Path) -> Iterator[Project]:
    """A project whose production model is served from the registry."""
    (project_dir / "keel.yaml").write_text(CONFIG)
    with Project.open(project_dir) as opened:
        yield opened


def _tiers(rows: int, seed: int) -> pd.DataFrame:
    """Three features; a three-class target drawn from a softmax of two of them."""
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(
        {
            "tenure": rng.integers(1, 72, rows),
            "spend": rng.normal(50, 10, rows).round(2),
            "visits": rng.integers(0, 30, rows),
        }
    )
    logits = np.column_stack([np.zeros(rows), (data["spend"] - 50) / 6, (data["tenure"] - 36) / 15])
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    pick = (rng.random((rows, 1)) > proba.cumsum(axis=1)).sum(axis=1)
    data["churned"] = np.array(CLASSES)[pick]
    data["value"] = 3 * data["spend"] - data["tenure"] + rng.normal(0, 10, rows)
    return data


def _window(proba: np.ndarray, labels: list[str], logged: np.ndarray | None = None) -> Joined:
    """Rows as the log reads them back: each row's probabilities as one list, beside the
    JSON list of the classes it holds (every class, or only the ``logged`` ones)."""
    ids = [f"p{i}" for i in range(len(labels))]
    kept = np.ones(proba.shape, bool) if logged is None else logged
    frame = pd.DataFrame({"prediction_id": ids})
    frame["proba"] = [list(row[keep]) for row, keep in zip(proba, kept, strict=True)]
    frame["proba_classes"] = [json.dumps(list(np.array(CLASSES)[keep])) for keep in kept]
    frame["output"] = np.array(CLASSES)[proba.argmax(axis=1)]
    return join_feedback(frame, pd.DataFrame({"prediction_id": ids, "label": labels}))


def _calibrated(rows: int, seed: int) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet([1.0, 1.0, 1.0], rows)
    pick = (rng.random((rows, 1)) > proba.cumsum(axis=1)).sum(axis=1)
    return proba, list(np.array(CLASSES)[pick])


def test_multiclass_log_loss_and_accuracy_equal_scikit_learns() -> None:
    """With every class's probability logged: log loss and accuracy as scikit-learn's."""
    proba, labels = _calibrated(1_000, seed=0)
    result = window_performance(_window(proba, labels), classes=CLASSES)
    predicted = np.array(CLASSES)[proba.argmax(axis=1)]
    assert result.kind == "multiclass"
    assert result.metrics["log_loss"] == pytest.approx(log_loss(labels, proba, labels=CLASSES))
    assert result.metrics["accuracy"] == pytest.approx(accuracy_score(labels, predicted))


def test_the_logged_class_names_place_each_probability() -> None:
    """The model's classes in another order than the logged lists: each probability goes
    to the class its row names, and log loss is still scikit-learn's."""
    proba, labels = _calibrated(300, seed=4)
    result = window_performance(_window(proba, labels), classes=CLASSES[::-1])
    assert result.metrics["log_loss"] == pytest.approx(log_loss(labels, proba, labels=CLASSES))


def test_segments_with_a_column_per_class_are_still_read(tmp_path: Path) -> None:
    """A segment rolled when each class had its own ``proba.<class>`` column is read
    beside one rolled now (one ``proba`` list): log loss over both is scikit-learn's."""
    import duckdb

    from keel.monitoring.log import PredictionLog
    from keel.monitoring.segments import SegmentInfo

    proba, labels = _calibrated(400, seed=5)
    ids, output = [f"p{i}" for i in range(400)], np.array(CLASSES)[proba.argmax(axis=1)]
    old = pd.DataFrame({"prediction_id": ids[:200], "seq": range(200), "output": output[:200]})
    old.insert(1, "time", pd.to_datetime(1.7e9 + np.arange(200), unit="s", utc=True))
    for i, name in enumerate(CLASSES):
        old[f"proba.{name}"] = proba[:200, i]
    duckdb.sql(f"COPY old TO '{tmp_path / 'old.parquet'}' (FORMAT parquet)")
    with PredictionLog(tmp_path / "log") as log:
        location = log.store.put("0-old", tmp_path / "old.parquet")
        log.manifest.commit(SegmentInfo("0-old", location, 200, 1.7e9, 1.7e9 + 199))
        new = [
            {"prediction_id": ids[i], "inputs": {}, "output": output[i], "time": 1.7e9 + i,
             "proba": proba[i].tolist(), "proba_classes": CLASSES}
            for i in range(200, 400)
        ]  # fmt: skip
        log.append(new)
        log.flush()
        frame = log.read()
    assert "proba.gold" in frame and "proba" in frame
    truth = pd.DataFrame({"prediction_id": ids, "label": labels})
    result = window_performance(join_feedback(frame, truth), classes=CLASSES)
    assert result.labelled == 400
    assert result.metrics["log_loss"] == pytest.approx(log_loss(labels, proba, labels=CLASSES))


def test_top_classes_only_share_the_mass_left_over() -> None:
    """When a row's true class was not among its logged top classes, its probability is
    the mass the logged ones leave, shared among those not logged."""
    proba, labels = _calibrated(500, seed=1)
    logged = proba >= np.sort(proba, axis=1)[:, [1]]  # the two likeliest of three
    result = window_performance(_window(proba, labels, logged), classes=CLASSES)
    truth = np.array([CLASSES.index(label) for label in labels])
    p_true = np.where(logged[np.arange(500), truth], proba[np.arange(500), truth],
                      1 - np.where(logged, proba, 0).sum(axis=1))  # fmt: skip
    assert result.metrics["log_loss"] == pytest.approx(float(-np.log(p_true).mean()))


def test_multiclass_accuracy_is_estimated_from_the_top_probability() -> None:
    """Before labels: expected accuracy within 0.03 of the realised on calibrated data."""
    proba, labels = _calibrated(4_000, seed=2)
    estimate = window_performance(_window(proba, labels), classes=CLASSES, mature=False)
    realised = accuracy_score(labels, np.array(CLASSES)[proba.argmax(axis=1)])
    assert estimate.estimated
    assert estimate.metrics["accuracy"] == pytest.approx(realised, abs=0.03)


@pytest.mark.anyio
async def test_served_multiclass_probabilities_give_scikit_learns_log_loss(
    project: Project, tmp_path: Path
) -> None:
    """A three-class model served over HTTP logs every class's probability: the realised
    log loss equals scikit-learn's on the model's own predict_proba of those rows."""
    train = _tiers(900, seed=0)
    model = LogisticRegression(max_iter=1000).fit(train[FEATURES], train["churned"])
    register(project, tmp_path, model, _tiers(200, seed=1).drop(columns="value"))
    rows = _tiers(600, seed=2)
    served = await serve(project, rows.drop(columns="value"))
    write_feedback(tmp_path / "truth.csv", served.ids, served.truth)
    keel("feedback", str(tmp_path / "truth.csv"), "--project", str(project.root))
    data = keel("performance", "--project", str(project.root))
    proba = model.predict_proba(rows[FEATURES])
    assert data["kind"] == "multiclass" and data["labelled"] == 600
    assert data["metrics"]["log_loss"] == pytest.approx(
        log_loss(served.truth, proba, labels=model.classes_), abs=1e-6
    )
    assert data["metrics"]["accuracy"] == pytest.approx(accuracy_score(served.truth, served.served))


@pytest.mark.anyio
async def test_served_regression_values_give_scikit_learns_errors(
    project: Project, tmp_path: Path
) -> None:
    """A regressor served over HTTP: MAE and R2 from the logged values and the labels."""
    train = _tiers(600, seed=0)
    model = LinearRegression().fit(train[FEATURES], train["value"])
    sample = _tiers(1_000, seed=1).drop(columns="churned").rename(columns={"value": "churned"})
    register(project, tmp_path, model, sample)
    rows = _tiers(400, seed=3)
    served = await serve(project, rows.drop(columns="churned").rename(columns={"value": "churned"}))
    write_feedback(tmp_path / "truth.csv", served.ids, served.truth)
    keel("feedback", str(tmp_path / "truth.csv"), "--project", str(project.root))
    data = keel("performance", "--project", str(project.root))
    assert data["kind"] == "regression" and data["labelled"] == 400
    assert data["metrics"]["mae"] == pytest.approx(mean_absolute_error(served.truth, served.served))
    assert data["metrics"]["r2"] == pytest.approx(r2_score(served.truth, served.served))
    assert data["intervals"]["mae"][0] < data["metrics"]["mae"] < data["intervals"]["mae"][1]


@pytest.mark.anyio
async def test_a_wide_model_logs_its_ten_likeliest_classes(
    project: Project, tmp_path: Path
) -> None:
    """Twelve classes: each logged row keeps the ten largest probabilities, in the model's
    class order beside their names, equal to the model's own predict_proba."""
    from keel.monitoring.log import PredictionLog

    train = _tiers(1_200, seed=0)
    train["churned"] = [f"c{int(v) % 12}" for v in train["value"]]
    model = LogisticRegression(max_iter=300).fit(train[FEATURES], train["churned"])
    sample = train.drop(columns="value").iloc[:600]
    register(project, tmp_path, model, sample)
    rows = sample.iloc[:50]
    served = await serve(project, rows)
    with PredictionLog.for_project(project) as log:
        logged = log.read().set_index("prediction_id").loc[served.ids]
    columns = [str(c) for c in model.classes_]
    proba = pd.DataFrame(model.predict_proba(rows[FEATURES]), columns=columns)
    top = proba.apply(lambda row: row.nlargest(10), axis=1).reindex(columns=columns)
    names = [json.loads(text) for text in logged["proba_classes"]]
    pairs = zip(names, logged["proba"], strict=True)
    kept = pd.DataFrame([dict(zip(held, values, strict=True)) for held, values in pairs])
    places = [[columns.index(name) for name in held] for held in names]
    assert all(place == sorted(place) for place in places)  # in the model's class order
    assert (kept.notna().sum(axis=1) == 10).all()
    pd.testing.assert_frame_equal(kept.reindex(columns=columns), top, check_dtype=False, atol=1e-12)
