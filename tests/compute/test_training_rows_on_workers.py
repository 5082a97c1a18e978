"""``keel train`` of an XGBoost or LightGBM classifier with ``compute.engine: dask`` on a
partitioned source keeps the rows on the real cluster's workers: this process never
reads the table (the functions that gather it are made to fail), the split is
``training.split``'s rule (random by the seed, or by time), the metrics are
scikit-learn's on the test rows, string labels come back as strings, and the model
predicts as the local engine's does.

The source is four Parquet files (1,900 rows) with a known signal: the label is drawn
from a logistic model of two numbers and a text column; a few labels are missing, and a
whole-number column has a null in one file only. Every expected number comes from pandas,
NumPy and scikit-learn reading the files, never from Keel.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import accuracy_score, average_precision_score, roc_auc_score

from keel.data.ingestion import ingest
from keel.errors import TrainingDataError
from keel.project import Project
from keel.training import Registry, train
from keel.training.data import load_holdout
from tests.compute.conftest import Cluster

pytestmark = pytest.mark.slow

PLANS = ["basic", "plus", "pro"]
FILES = {"a": (0, 600), "b": (600, 450), "c": (1050, 500), "d": (1550, 350)}
SEED = 13
TEST_SIZE = 0.25
MODELS = {
    "xgboost": {
        "estimator": "xgboost.XGBClassifier",
        "params": {"n_estimators": 30, "max_depth": 3, "n_jobs": 1, "tree_method": "hist"},
    },
    "lightgbm": {
        "estimator": "lightgbm.LGBMClassifier",
        "params": {"n_estimators": 30, "num_leaves": 7, "n_jobs": 1, "verbose": -1},
    },
}


def events(start: int, rows: int) -> pd.DataFrame:
    """x1 raises the odds of "yes", x2 lowers them, "pro" raises them; noise does nothing."""
    rng = np.random.default_rng(start + 7)
    frame = pd.DataFrame(
        {
            "event_id": np.arange(start, start + rows),
            "event_time": pd.Timestamp("2026-05-01") + pd.to_timedelta(np.arange(rows), "min"),
            "x1": rng.normal(size=rows),
            "x2": rng.normal(size=rows),
            "noise": rng.normal(size=rows),
            "visits": pd.array(rng.integers(0, 20, rows), dtype="Int64"),
            "plan": rng.choice(PLANS, rows),
            # whole hours: ties within and across files; a few unknown
            "seen_at": pd.Timestamp("2026-06-01")
            + pd.to_timedelta(rng.integers(0, 300, rows), "h"),
        }
    )
    frame.loc[rng.choice(rows, 3, replace=False), "seen_at"] = pd.NaT
    logit = 1.5 * frame["x1"] - frame["x2"] + np.where(frame["plan"] == "pro", 1.0, 0.0)
    label = np.where(rng.uniform(size=rows) < 1 / (1 + np.exp(-logit)), "yes", "no")
    frame["label"] = pd.Series(label, dtype=object)
    frame.loc[rng.choice(rows, 5, replace=False), "label"] = None
    if start == 600:  # only file b has a null whole number: nullable in the whole table
        frame.loc[3, "visits"] = pd.NA
    return frame


def the_table() -> pd.DataFrame:
    """The source's rows in file order, as pandas reads the files."""
    return pd.concat([events(*span) for span in FILES.values()], ignore_index=True)


def project(
    root: Path, compute: dict[str, Any] | None, split: str = "random", library: str = "xgboost"
) -> Path:
    """A project whose source ``events`` is the four files, ingested; the split is
    ``random``, or by ``time`` on ``seen_at``; the model is ``library``'s classifier."""
    (root / "data" / "events").mkdir(parents=True)
    for name, span in FILES.items():
        events(*span).to_parquet(root / "data" / "events" / f"{name}.parquet", index=False)
    config: dict[str, Any] = {
        "name": "rows",
        "sources": {
            "events": {
                "kind": "parquet",
                "path": "data/events/",
                "partitioned": True,
                "key": "event_id",
                "timestamp": "event_time",
            }
        },
        "training": {
            "data": "events",
            "target": "label",
            "positive_class": "yes",
            "exclude": ["event_id", "event_time", "seen_at"],
            "model": MODELS[library],
            "seed": SEED,
            "split": {"by": split, "test_size": TEST_SIZE, "column": "seen_at"},
            "metrics": ["roc_auc", "average_precision", "accuracy"],
        },
    }
    if compute is not None:
        config["compute"] = compute
    (root / "keel.yaml").write_text(yaml.safe_dump(config))
    with Project.open(root) as opened:
        ingest(opened)
    return root


def expected_split(by: str = "random") -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rule on the labelled rows, computed here; round(rows x test_size) are held out.
    Random: the first of a permutation of the row positions drawn with the seed. Time:
    the last by ``seen_at`` (NumPy's stable sort: ties in row order, unknown last)."""
    table = the_table()
    table = table[table["label"].notna()].reset_index(drop=True)
    held = round(len(table) * TEST_SIZE)
    if by == "time":
        test = np.sort(np.argsort(table["seen_at"].to_numpy(), kind="stable")[-held:])
    else:
        test = np.sort(np.random.default_rng(SEED).permutation(len(table))[:held])
    return table.drop(index=test), table.iloc[test]


def inputs(frame: pd.DataFrame) -> pd.DataFrame:
    """The model's input as pandas builds it: the text column as a categorical."""
    out = frame[["x1", "x2", "noise", "visits", "plan"]].copy()
    out["visits"] = out["visits"].astype("float64")
    out["plan"] = pd.Categorical(out["plan"], categories=PLANS)
    return out


def model_of(opened: Project, version: Any) -> Any:
    path = opened.artifacts.local_path(version.artifact)
    return pickle.loads(Path(path).read_bytes())["model"]


def forbid_gathering(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every way this process could hold the table fails: the local read, the read on
    the workers that gathers here, the CSV/Parquet reader and ``dd.from_pandas``."""
    import dask.dataframe

    import keel.data.access
    import keel.training.data

    def gathered(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the training rows were gathered in the client process")

    monkeypatch.setattr(keel.data.access, "_read_union", gathered)
    monkeypatch.setattr(keel.data.access, "_read_on", gathered)
    monkeypatch.setattr(keel.training.data, "read_table", gathered)
    monkeypatch.setattr(dask.dataframe, "from_pandas", gathered)


@pytest.mark.parametrize("library", sorted(MODELS))
def test_the_rows_stay_on_the_workers_split_by_the_seeded_rule(
    library: str, cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every gathering path failing, ``train`` completes: the record says the rows
    stayed on the workers, in a partition per file; its counts are pandas'; the stored
    held-out rows are exactly the rule's test rows; the metrics equal scikit-learn's on
    the model's predictions for them; the classes are the table's strings, with the
    training counts pandas finds."""
    compute = {"engine": "dask", "address": cluster.address}
    root = project(tmp_path / library, compute, library=library)
    training, testing = expected_split()
    with Project.open(root) as opened:
        with monkeypatch.context() as patched:
            forbid_gathering(patched)
            version = train(opened).version
        record = Registry(opened.store).record(version.version)
        model = model_of(opened, version)
        holdout = load_holdout(opened, record)
    assert record["compute"]["rows_on"] == "workers"
    assert record["compute"]["partitions"] == len(FILES)
    assert record["compute"]["gathered"] == {"test_scores": len(testing), "holdout_rows": 470}
    data = record["data"]
    assert (data["rows"], data["train_rows"], data["test_rows"]) == (
        len(training) + len(testing),
        len(training),
        len(testing),
    )
    assert data["missing_labels"] == int(the_table()["label"].isna().sum()) == 20
    assert holdout["event_id"].tolist() == testing["event_id"].tolist()
    proba = model.predict_proba(inputs(testing))[:, list(model.classes_).index("yes")]
    truth = (testing["label"] == "yes").to_numpy()
    assert record["metrics"] == {  # the record keeps six decimals
        "roc_auc": round(roc_auc_score(truth, proba), 6),
        "average_precision": round(average_precision_score(truth, proba), 6),
        "accuracy": round(accuracy_score(truth, proba >= 0.5), 6),
    }
    assert list(model.classes_) == ["no", "yes"]
    assert set(model.predict(inputs(testing))) <= {"no", "yes"}
    counts = training["label"].value_counts()
    assert record["classes"]["counts"] == [counts["no"], counts["yes"]]
    plan = next(c for c in record["schema"] if c["name"] == "plan")
    assert plan["categories"] == PLANS
    visits = next(c for c in record["schema"] if c["name"] == "visits")
    table = pd.concat([training, testing])
    assert (visits["nullable"], visits["min"], visits["max"]) == (
        True,
        float(table["visits"].min()),
        float(table["visits"].max()),
    )


@pytest.mark.parametrize("library", sorted(MODELS))
def test_the_workers_hold_the_table_once_when_the_booster_fits(
    library: str, cluster: Cluster, tmp_path: Path
) -> None:
    """As the booster's training task starts on each worker, the workers hold the table
    once: of its rows with their columns only the test rows, each once (the partitions
    read from the files and the training rows with their columns were released after the
    split), and the training rows as the model's input. A worker plugin reads each
    worker's memory at that moment: objects, not a measure of memory."""
    from distributed import Client

    from tests.compute.held_at_fit import HeldAtFit, held_at_fit

    compute = {"engine": "dask", "address": cluster.address}
    root = project(tmp_path / library, compute, library=library)
    training, testing = expected_split()
    with Client(cluster.address, set_as_default=False) as client:
        client.register_plugin(HeldAtFit())
        try:
            with Project.open(root) as opened:
                train(opened)
            found = held_at_fit(client)
        finally:
            client.unregister_worker_plugin(HeldAtFit.name)
    assert found, "no training task started on a worker"
    held = sorted(i for worker in found for i in worker.table_ids)
    assert held == sorted(testing["event_id"]), f"{len(held)} rows held, not the {len(testing)}"
    # the moment is the fit's: the model's input is there (the booster's own packing of
    # its parts may copy one to the worker that holds its labels, so not "each once")
    features = ("x1", "x2", "noise", "visits", "plan")
    inputs = [rows for worker in found for columns, rows in worker.others if columns == features]
    assert sum(inputs) >= len(training)


def test_a_time_split_on_the_workers_holds_out_the_latest_rows(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Split by time on a column with ties across files and unknown times, with every
    gathering path failing: the held-out rows are exactly the latest ones NumPy's stable
    sort of the whole column finds, and the metric is scikit-learn's on them."""
    compute = {"engine": "dask", "address": cluster.address}
    root = project(tmp_path / "time", compute, split="time")
    training, testing = expected_split("time")
    assert testing["seen_at"].isna().sum() == 12  # every unknown time is among the latest
    with Project.open(root) as opened:
        with monkeypatch.context() as patched:
            forbid_gathering(patched)
            version = train(opened).version
        record = Registry(opened.store).record(version.version)
        model = model_of(opened, version)
        holdout = load_holdout(opened, record)
    assert record["compute"]["rows_on"] == "workers"
    assert (record["data"]["train_rows"], record["data"]["test_rows"]) == (
        len(training),
        len(testing),
    )
    assert holdout["event_id"].tolist() == testing["event_id"].tolist()
    proba = model.predict_proba(inputs(testing))[:, list(model.classes_).index("yes")]
    truth = (testing["label"] == "yes").to_numpy()
    assert record["metrics"]["roc_auc"] == round(roc_auc_score(truth, proba), 6)


def test_the_model_predicts_as_the_local_engines(cluster: Cluster, tmp_path: Path) -> None:
    """The same source trained with ``compute.engine: local`` (rows read and fitted in
    this process) and on the workers: the same rows (the records' data digests, row
    counts and held-out rows agree) and probabilities on fresh rows within 0.02 each.

    Closeness, not equality, is what XGBoost promises across the two: on Dask each worker
    sketches the quantiles of its own partitions and the sketches are merged, and the
    histograms are summed in another order, so a split threshold or a float sum can
    differ from the one-process fit."""
    local = project(tmp_path / "local", None)
    remote = project(tmp_path / "cluster", {"engine": "dask", "address": cluster.address})
    found = []
    for root in (local, remote):
        with Project.open(root) as opened:
            version = train(opened).version
            record = Registry(opened.store).record(version.version)
            found.append((record, model_of(opened, version), load_holdout(opened, record)))
    (local_record, local_model, local_holdout), (record, model, holdout) = found
    assert record["compute"]["rows_on"] == "workers"
    assert "rows_on" not in local_record["compute"]
    for key in ("sha256", "rows", "train_rows", "test_rows", "missing_labels", "start", "end"):
        assert record["data"][key] == local_record["data"][key], key
    pd.testing.assert_frame_equal(holdout, local_holdout)
    fresh = inputs(events(9000, 500))
    ours = model.predict_proba(fresh)[:, 1]
    theirs = local_model.predict_proba(fresh)[:, 1]
    assert np.abs(ours - theirs).max() < 0.02
    local_auc = local_record["metrics"]["roc_auc"]
    assert record["metrics"]["roc_auc"] == pytest.approx(local_auc, abs=0.01)


@pytest.mark.parametrize(
    ("training", "sentence"),
    [
        ({"target": "outcome"}, "the training data has no target column 'outcome'"),
        (
            {"split": {"by": "time", "column": "arrived_at"}},
            "training.split is by time but its column 'arrived_at' is not in the data",
        ),
    ],
)
def test_a_bad_setting_is_one_sentence_with_the_rows_on_the_workers(
    training: dict[str, Any], sentence: str, cluster: Cluster, tmp_path: Path
) -> None:
    """A target or split column the table does not have: the local engine's sentence,
    and no version registered."""
    root = project(tmp_path / "bad", {"engine": "dask", "address": cluster.address})
    config = yaml.safe_load((root / "keel.yaml").read_text())
    config["training"].update(training)
    (root / "keel.yaml").write_text(yaml.safe_dump(config))
    with Project.open(root) as opened:
        with pytest.raises(TrainingDataError, match=sentence):
            train(opened)
        assert Registry(opened.store).versions() == []


def test_empty_partitions_leave_no_worker_with_only_empty_input(
    cluster: Cluster, tmp_path: Path
) -> None:
    """One file of rows and three empty months (a categorical feature, plan): a worker
    that holds only empty partitions would make XGBoost refuse its input; the model trains
    on the workers, on every labelled row pandas counts (train + test)."""
    root = tmp_path / "sparse"
    folder = root / "data" / "events"
    folder.mkdir(parents=True)
    rows = events(0, 600)
    rows.to_parquet(folder / "a.parquet", index=False)
    for name in ("b", "c", "d"):
        rows.head(0).to_parquet(folder / f"{name}.parquet", index=False)
    config = yaml.safe_load((project(tmp_path / "template", None) / "keel.yaml").read_text())
    config["compute"] = {"engine": "dask", "address": cluster.address}
    (root / "keel.yaml").write_text(yaml.safe_dump(config))
    with Project.open(root) as opened:
        ingest(opened)
        version = train(opened).version
        record = Registry(opened.store).record(version.version)
    assert record["compute"]["rows_on"] == "workers"
    labelled = int(rows["label"].notna().sum())
    assert record["data"]["train_rows"] + record["data"]["test_rows"] == labelled
    assert record["data"]["test_rows"] == round(labelled * TEST_SIZE)
