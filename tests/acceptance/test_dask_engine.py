"""CHOP's COVID-19 tests (medicaldata's covid_testing: 15,524 tests of 12,344 people) as a
team's partitioned Parquet source, run through the CLI twice: with ``compute.engine:
local`` and with ``engine: dask`` on a real cluster (``dask scheduler`` and two ``dask
worker`` processes on loopback).

The table has what the generated example lacks: many entities (people tested up to 20
times), a date, two flags, a long-tailed category (88 clinics, 18 of them seen once),
string labels of three classes (negative, positive, invalid), text nulls (payor and
patient class are missing for 45% of tests) and impossible values (an age of 138, sample
turnarounds of weeks). Each project runs, as child processes::

    keel init ROOT --from covid.parquet --target result --key test_key --time collected_on
    keel ingest
    keel validate --source covid --latest
    keel data show VERSION
    keel train                       # XGBoost: through xgboost.dask on the cluster
    keel train                       # a random forest: trees as joblib jobs on the cluster
    keel deploy 1
    keel predict --batch data/heldout/ --out xgboost.parquet    # the rows held out
    keel predict --batch data/heldout/ --version 2 --out forest.parquet
    keel keys create; keel serve     # /v1/predict over real HTTP
    keel features build-training-set --labels labels.csv --out set.parquet

Every expected number comes from pandas or scikit-learn reading the table. About 7-10
minutes at a load average of 15-22 on the shared two-core test machine, where one ``keel``
command takes 10-90 s; the two projects' stories run side by side.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from sklearn.metrics import accuracy_score

from keel.project import Project
from keel.training import Registry
from tests.cluster import Cluster
from tests.compute.test_training_cluster import _joblib_calls
from tests.helpers import keel

from .story import api_key, edit_config, init, predict, rdata, run, server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ANCHOR = pd.Timestamp("2020-03-01")  # the table counts days (pan_day), not dates
TEST_SIZE = 0.2
SERVED = 500
TREES = 40
LABELS = {"invalid", "negative", "positive"}
XGBOOST = {
    "estimator": "xgboost.XGBClassifier",
    "params": {"n_estimators": 40, "max_depth": 3, "n_jobs": 1, "tree_method": "hist"},
}
FOREST = {
    "function": "forest:fit",
    "params": {"n_estimators": TREES, "min_samples_leaf": 5, "random_state": 7},
}
FEATURES = """\
from keel.features import FeatureView

last_test = FeatureView(
    name="last_test", source="covid", entity="subject_id", timestamp="collected_on",
    features=("age", "clinic_name"),
)
"""
FOREST_MODULE = '''\
"""A random forest on the table's columns: text columns as ordinal codes, its trees
built in joblib jobs (as many as joblib's backend has workers)."""

from sklearn.compose import make_column_selector, make_column_transformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OrdinalEncoder


def fit(X, y, params):
    codes = OrdinalEncoder(
        handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1
    )
    text = make_column_transformer(
        (codes, make_column_selector(dtype_include="category")), remainder="passthrough"
    )
    return make_pipeline(text, RandomForestClassifier(**params, n_jobs=-1)).fit(X, y)
'''


def covid_table() -> pd.DataFrame:
    """The tests as a team's Parquet holds them: a key per test, the collection day as a
    date, the two 0/1 indicators as flags."""
    table = rdata("medicaldata", "covid_testing")
    table.insert(0, "test_key", [f"t{i:05d}" for i in range(len(table))])
    table["collected_on"] = ANCHOR + pd.to_timedelta(table.pop("pan_day"), "D")
    return table.astype({"drive_thru_ind": bool, "orderset": bool})


def monthly(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """One file per month of collection, as the source's folder holds them."""
    month = table["collected_on"].dt.strftime("%Y-%m")
    return {f"{m}.parquet": table[month == m] for m in sorted(month.unique())}


def the_table() -> pd.DataFrame:
    """The source's rows as pandas reads its files, in file (name) order."""
    return pd.concat(monthly(covid_table()).values(), ignore_index=True)


def held_out(table: pd.DataFrame) -> pd.DataFrame:
    """The rows a split by time holds out: the latest fifth of the labelled rows by
    collection day, ties in file order (pandas' stable sort), kept in file order."""
    labelled = table[table["result"].notna()].reset_index(drop=True)
    latest = labelled.sort_values("collected_on", kind="stable").tail(
        round(len(labelled) * TEST_SIZE)
    )
    return latest.sort_index()


def project(base: Path, compute: dict[str, Any]) -> Path:
    """``keel init --from`` the whole table, then the team's edits: the table arrives as
    monthly files, the turnaround and age ranges are what a laboratory allows, and the
    model leaves out the person, the names and the Ct value (known only with the result)."""
    base.mkdir(parents=True)
    covid_table().to_parquet(base / "covid.parquet", index=False)
    root = base / "covid"
    init(root, base / "covid.parquet", "--target", "result", "--key", "test_key",
         "--time", "collected_on")  # fmt: skip
    (root / "data" / "covid.parquet").unlink()
    folder = root / "data" / "covid"
    folder.mkdir()
    for name, rows in monthly(covid_table()).items():
        rows.to_parquet(folder / name, index=False)
    config = yaml.safe_load((root / "keel.yaml").read_text())
    source = config["sources"]["covid"]
    source.update({"path": "data/covid/", "partitioned": True})
    source["checks"]["columns"]["age"]["range"] = [0, 120]
    source["checks"]["columns"]["col_rec_tat"]["range"] = [0, 720]  # hours: 30 days
    config["training"]["exclude"] += ["subject_id", "fake_last_name", "ct_result"]
    config["training"]["model"] = XGBOOST
    config["gate"] = {"thresholds": {"roc_auc": "> 0.5"}}
    config["compute"] = compute
    (root / "keel.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (root / "forest.py").write_text(FOREST_MODULE)
    # a loaded machine must not turn a prediction into a fallback; the scored rows
    # carry columns the model does not take
    serving = {"timeout_ms": 60000, "rate_limit": None, "validation": {"extra_fields": "ignore"}}
    edit_config(root, {"serving": serving})
    heldout = folder.parent / "heldout"
    heldout.mkdir()
    for name, rows in monthly(held_out(the_table())).items():
        rows.to_parquet(heldout / name, index=False)
    return root


def labels(table: pd.DataFrame) -> pd.DataFrame:
    """Each person tested on more than one day, a second before the day of their last test:
    their features are those of their latest test on an earlier day."""
    days = table.groupby("subject_id")["collected_on"]
    last = days.max()[days.nunique() > 1]
    moments = last.to_numpy() - pd.Timedelta(seconds=1)
    return pd.DataFrame({"subject_id": last.index, "timestamp": moments})


@dataclass(frozen=True)
class Story:
    """What one project's commands answered and wrote."""

    root: Path
    ingested: dict[str, Any]
    validated: dict[str, Any]
    shown: dict[str, Any]
    xgboost: dict[str, Any]
    forest: dict[str, Any]
    scored: dict[str, pd.DataFrame]
    served: pd.DataFrame
    training_set: pd.DataFrame

    def compute(self, version: int) -> dict[str, Any]:
        """Where and how the version was fitted, as its run record keeps it."""
        with Project.open(self.root) as opened:
            found: dict[str, Any] = Registry(opened.store).record(version)["compute"]
        return found


def trained(root: Path) -> dict[str, Any]:
    """``keel train``'s answer, with its exit code (0, or 2 when the gate fails)."""
    done = keel("train", "--json", "--project", str(root), timeout=300)
    assert done.returncode in (0, 2), done.stderr[-2000:]
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer | {"exit_code": done.returncode}


def run_story(root: Path) -> Story:
    (ingested,) = run("ingest", root=root)["runs"]
    validated = run("validate", "--source", "covid", "--latest", root=root)
    shown = run("data", "show", ingested["version_id"], root=root)
    xgboost = run("train", root=root)
    edit_config(root, {"training": {"model": FOREST}})
    forest = trained(root)
    run("deploy", "1", "--reason", "first model", root=root)
    scored = {}
    for name, version in (("xgboost", "1"), ("forest", "2")):
        out = root / f"{name}.parquet"
        held = str(root / "data" / "heldout")  # a path on the command line: the working folder's
        run("predict", "--batch", held, "--version", version, "--out", str(out), root=root)
        scored[name] = pd.read_parquet(out)
    rows = held_out(the_table()).head(SERVED).drop(columns=["result", "collected_on"])
    key = api_key(root)
    with server(root) as http:
        served = predict(http, key, rows)
    # the team then declares a feature view of each person's latest test
    (root / "features.py").write_text(FEATURES)
    edit_config(root, {"features": {"module": "features.py"}})
    labels(the_table()).to_csv(root / "labels.csv", index=False)
    # its paths are the working folder's, as every path typed on the command line
    run("features", "build-training-set", "--labels", str(root / "labels.csv"),
        "--out", str(root / "set.parquet"), root=root)  # fmt: skip
    training_set = pd.read_parquet(root / "set.parquet")
    return Story(root, ingested, validated, shown, xgboost, forest, scored, served, training_set)


@pytest.fixture(scope="module")
def stories(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> tuple[Story, Story]:
    """(the local project's story, the cluster project's story), told side by side; the
    trees the forest builds on the cluster are counted from the scheduler's task stream."""
    base = tmp_path_factory.mktemp("covid")
    dask = {"engine": "dask", "address": cluster.address, "partition_rows": 2000}
    with (
        ThreadPoolExecutor(2) as pool,
        _joblib_calls(cluster, "_parallel_build_trees") as trees,
    ):
        local = pool.submit(run_story, project(base / "local", {"engine": "local"}))
        remote = pool.submit(run_story, project(base / "dask", dask))
        told = local.result(), remote.result()
    # each tree once, on the cluster: the local project's forest builds its trees in this
    # machine's threads (the stream holds the tasks once its block has ended)
    assert trees() == TREES
    return told


def findings(report: dict[str, Any]) -> list[tuple[str, str, str, Any]]:
    return sorted((f["check"], f["status"], f["message"], f["violations"]) for f in report)


def violations(report: dict[str, Any], check: str) -> int:
    return sum(f["violations"] for f in report["findings"] if f["check"] == check)


def test_every_row_is_published_with_the_same_findings_on_both_engines(
    stories: tuple[Story, Story],
) -> None:
    """Both engines publish one version (the same digest) of the 15,524 rows pandas reads,
    with the same findings on ingest and on ``validate --latest``."""
    local, dask = stories
    for story in stories:
        assert story.ingested["status"] == "published", story.ingested["message"]
        assert story.ingested["rows"] == story.validated["rows"] == len(the_table()) == 15_524
    assert local.ingested["version_id"] == dask.ingested["version_id"]
    assert findings(local.ingested["report"]["findings"]) == findings(
        dask.ingested["report"]["findings"]
    )
    assert findings(local.validated["findings"]) == findings(dask.validated["findings"])


def test_impossible_ages_and_turnarounds_are_counted_as_pandas_counts_them(
    stories: tuple[Story, Story],
) -> None:
    """The range warnings name as many rows as pandas finds outside them (an age of 138;
    turnarounds from collection to receipt longer than 30 days), summed over the files."""
    table = the_table()
    too_old = int((~table["age"].between(0, 120)).sum())
    too_long = int((~table["col_rec_tat"].between(0, 720)).sum())
    assert (too_old, too_long) == (1, 4)
    for story in stories:
        for report in (story.ingested["report"], story.validated):
            assert violations(report, "age.range") == too_old
            assert violations(report, "col_rec_tat.range") == too_long


def test_null_counts_and_category_counts_are_pandas(stories: tuple[Story, Story]) -> None:
    """``keel data show`` profiles each column with pandas' null count, the few-valued text
    columns with pandas' exact value counts (the payor and patient class, nulls aside),
    and the long-tailed clinic names with their number of distinct values (a HyperLogLog
    sketch on the cluster: within 5% of pandas' 88)."""
    table = the_table()
    clinics = table["clinic_name"].value_counts()
    assert clinics.iloc[0] > 3000 and (clinics == 1).sum() == 18  # a long tail
    for story in stories:
        profile = {c["name"]: c for c in story.shown["profile"]["columns"]}
        assert {name: c["nulls"] for name, c in profile.items()} == table.isna().sum().to_dict()
        for name in ("payor_group", "patient_class"):
            assert dict(profile[name]["top"]) == table[name].value_counts().to_dict()
        assert abs(profile["clinic_name"]["distinct"] - len(clinics)) <= 0.05 * len(clinics)


def test_both_models_answer_in_the_table_s_labels(stories: tuple[Story, Story]) -> None:
    """Batch and HTTP answers are the table's own result labels; training names the three."""
    for story in stories:
        assert set(story.xgboost["classes"]["classes"]) == LABELS
        for frame in (*story.scored.values(), story.served):
            assert set(frame["label"]) <= LABELS and "positive" in set(frame["label"])
            assert (frame["prediction"] == frame["label"]).all()


def test_batch_answers_are_the_http_api_s(stories: tuple[Story, Story]) -> None:
    """The production model's batch answers to the held-out rows equal what ``/v1/predict``
    answers for the same rows over HTTP (label and confidence)."""
    for story in stories:
        batch = story.scored["xgboost"].head(SERVED)
        assert (batch["label"].to_numpy() == story.served["label"].to_numpy()).all()
        np.testing.assert_allclose(
            batch["confidence"].to_numpy(float), story.served["confidence"].to_numpy(float),
            atol=1e-9,
        )  # fmt: skip
        assert set(story.served["model_version"]) == {"covid@1"}


def test_the_recorded_accuracy_is_sklearn_s_on_the_held_out_rows(
    stories: tuple[Story, Story],
) -> None:
    """Each version's recorded accuracy is scikit-learn's ``accuracy_score`` of its batch
    labels on the rows a split by time holds out (pandas picks them); so the held-out rows
    Keel scored are these, in both engines."""
    truth = held_out(the_table())["result"].to_numpy()
    for story in stories:
        assert story.xgboost["data"]["test_rows"] == len(truth)
        for name, trained in (("xgboost", story.xgboost), ("forest", story.forest)):
            labels = story.scored[name]["label"].to_numpy()
            expected = accuracy_score(truth, labels)
            assert trained["version"]["metrics"]["accuracy"] == pytest.approx(expected, abs=1e-6)


def test_xgboost_trained_on_the_cluster_predicts_as_the_local_one(
    stories: tuple[Story, Story],
) -> None:
    """The Dask project's XGBoost trains through ``xgboost.dask`` on both workers, and its
    answers to the 3,105 held-out rows agree with the local model's: the same label for
    at least 99% of rows, confidences within 0.05 each and 0.01 on average.

    Closeness is what XGBoost promises, not equality: on Dask each worker sketches the
    quantiles of its own partitions and the sketches are merged, and histograms are summed
    across workers in another order, so where a column has more distinct values than
    ``max_bin`` (256; the collection-to-receipt turnaround has 315) a split's
    threshold and the float sums can differ from the one-process fit. In our runs the
    answers were identical, which the tolerances allow but do not require."""
    local, dask = stories
    table = the_table()
    assert table["col_rec_tat"].nunique() > 256
    compute = dask.compute(1)
    assert (compute["fit"], compute["workers"]) == ("dask", 2) and compute["partitions"] > 1
    assert local.compute(1)["engine"] == "local"
    ours, theirs = dask.scored["xgboost"], local.scored["xgboost"]
    assert (ours["label"].to_numpy() == theirs["label"].to_numpy()).mean() >= 0.99
    gap = np.abs(ours["confidence"].to_numpy(float) - theirs["confidence"].to_numpy(float))
    assert gap.max() < 0.05 and gap.mean() < 0.01


def test_the_forest_fits_on_the_client_and_equals_the_local_one(
    stories: tuple[Story, Story],
) -> None:
    """The forest (a training function) fits in the command's process with joblib's Dask
    backend, all its trees built on the cluster (the fixture counts them); same data and
    seed give the local forest's answers (up to the last bit of a float sum: the forest
    adds its trees' votes in the order its threads finish)."""
    local, dask = stories
    compute = dask.compute(2)
    assert (compute["fit"], compute["joblib"], compute["workers"]) == ("client", "dask", 2)
    ours, theirs = dask.scored["forest"], local.scored["forest"]
    assert (ours["label"].to_numpy() == theirs["label"].to_numpy()).all()
    np.testing.assert_allclose(
        ours["confidence"].to_numpy(float), theirs["confidence"].to_numpy(float), atol=1e-12
    )


def test_the_training_set_is_pandas_merge_asof_on_both_engines(
    stories: tuple[Story, Story],
) -> None:
    """``keel features build-training-set`` gives the same rows on both engines, one per
    label, and each person's age and clinic are those of their latest earlier test, as
    pandas' ``merge_asof`` finds it (where that day holds one test of theirs: on a day
    with two, which one is latest is not in the table)."""
    order = ["subject_id", "timestamp"]
    ours, theirs = (s.training_set.sort_values(order).reset_index(drop=True) for s in stories)
    pd.testing.assert_frame_equal(theirs, ours)
    table = the_table().sort_values("collected_on", kind="stable")
    expected = pd.merge_asof(
        labels(the_table()).sort_values("timestamp"),
        table[["subject_id", "collected_on", "age", "clinic_name"]],
        left_on="timestamp", right_on="collected_on", by="subject_id",
    ).sort_values(order).reset_index(drop=True)  # fmt: skip
    assert len(ours) == len(expected) > 1000
    tests_that_day = table.groupby(["subject_id", "collected_on"]).size()
    one = tests_that_day.reindex(pd.MultiIndex.from_frame(expected[["subject_id", "collected_on"]]))
    alone = (one == 1).to_numpy()
    assert alone.mean() > 0.9
    np.testing.assert_array_equal(ours["age"][alone], expected["age"][alone])
    assert (ours["clinic_name"][alone] == expected["clinic_name"][alone]).all()


def test_the_forest_passes_its_gate(stories: tuple[Story, Story]) -> None:
    """A forest that predicts in parallel (``n_jobs=-1``, as teams write it) is loadable:
    its gate passes, as its ROC AUC threshold does."""
    for story in stories:
        checks = {c["name"]: c["passed"] for c in story.forest["gate"]["checks"]}
        assert checks["threshold:roc_auc"] is True
        assert story.forest["gate"]["passed"] is True, story.forest["gate"]
        assert story.forest["exit_code"] == 0


def test_an_empty_month_is_a_warning(tmp_path: Path) -> None:
    """A month's file with the table's schema and no rows is published beside the others,
    with a ``partition:empty`` warning naming it (the README's promise)."""
    root = project(tmp_path / "empty", {"engine": "local"})
    folder = root / "data" / "covid"
    # the schema of the months' files (pandas alone would type a column of no text NULL)
    schema = pq.read_schema(sorted(folder.glob("*.parquet"))[0])
    pq.write_table(schema.empty_table(), folder / "2020-07.parquet")
    (ingested,) = run("ingest", root=root)["runs"]
    assert (ingested["status"], ingested["rows"]) == ("published", len(the_table()))
    empty = [f for f in ingested["report"]["findings"] if f["check"] == "partition:empty"]
    assert len(empty) == 1 and "2020-07.parquet" in empty[0]["message"]
