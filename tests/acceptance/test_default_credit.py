"""ISLR's Default: 10,000 card holders, `default` Yes/No with 3.3% Yes, a Yes/No `student` flag.

The team's table has string labels whose minority is the class of interest, some labels
missing, and a text flag. The story runs the real CLI end to end: init --from, ingest,
train behind its gate, deploy latest, a re-sent batch, a batch with out-of-range values,
serve over HTTP, feedback and realised performance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from .story import api_key, edit_config, feedback, findings, init, predict, rdata, run, server

pytestmark = pytest.mark.slow

SEED = 7
TRAIN_ROWS = 8_000
MISSING_LABELS = 37
RESENT = 40
OUT_OF_RANGE, NEW_WORDS = 13, 7
FEATURES = ["customer_id", "student", "balance", "income"]


def credit_table() -> pd.DataFrame:
    """Default, shuffled with a fixed seed, with a key per card holder."""
    table = rdata("ISLR", "Default").sample(frac=1, random_state=SEED).reset_index(drop=True)
    table.insert(0, "customer_id", [f"d_{i:05d}" for i in range(len(table))])
    return table


@dataclass(frozen=True)
class Story:
    """What the team's table held and what each command answered."""

    history: pd.DataFrame
    later: pd.DataFrame
    warned: pd.DataFrame
    ingested: dict[str, Any]
    trained: dict[str, Any]
    resent: dict[str, Any]
    warned_run: dict[str, Any]
    served: pd.DataFrame
    performance: dict[str, Any]
    drift: dict[str, Any]
    students_drift: dict[str, Any]


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Story:
    """The whole path once: every test below checks one thing it answered."""
    tmp = tmp_path_factory.mktemp("default")
    table = credit_table()
    history, later = table.iloc[:TRAIN_ROWS].copy(), table.iloc[TRAIN_ROWS:].copy()
    rng = np.random.default_rng(SEED)
    history.loc[rng.choice(history.index, MISSING_LABELS, replace=False), "default"] = None
    history.to_csv(tmp / "default.csv", index=False)
    root = tmp / "credit"
    init(root, tmp / "default.csv", "--target", "default", "--key", "customer_id")
    # The team reviews the proposal: new files arrive beside the first one, and a
    # loaded machine must not turn a 20 ms prediction into a timeout.
    source = {"path": "data/default*.csv"}
    edit_config(root, {"serving": {"timeout_ms": 5000, "rate_limit": None}})
    _edit_source(root, source)
    ingested = run("ingest", root=root)["runs"][0]
    trained = run("train", root=root)
    run("deploy", "latest", root=root)

    history.iloc[100 : 100 + RESENT].to_csv(root / "data" / "default_resent.csv", index=False)
    resent = run("ingest", root=root, code=1)["runs"][0]
    (root / "data" / "default_resent.csv").unlink()

    warned = later.copy()
    picked = rng.choice(warned.index, OUT_OF_RANGE + NEW_WORDS, replace=False)
    warned.loc[picked[:OUT_OF_RANGE], "income"] = later["income"].max() * 10
    warned.loc[picked[OUT_OF_RANGE:], "student"] = "Maybe"
    warned.to_csv(root / "data" / "default_later.csv", index=False)
    warned_run = run("ingest", root=root)["runs"][0]

    key = api_key(root)
    with server(root) as http:
        served = predict(http, key, later[FEATURES])
    feedback(root, served, later["default"])
    performance = run("performance", root=root)
    drift = run("drift", root=root)
    students = later[later["student"] == "Yes"]
    with server(root) as http:
        predict(http, key, students[FEATURES])
    students_drift = run("drift", "--last", str(len(students)), root=root)
    return Story(
        history,
        later,
        warned,
        ingested,
        trained,
        resent,
        warned_run,
        served,
        performance,
        drift,
        students_drift,
    )


def _edit_source(root: Path, change: dict[str, Any]) -> None:
    import yaml

    path = root / "keel.yaml"
    config = yaml.safe_load(path.read_text())
    config["sources"]["default"].update(change)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def test_first_table_is_published_whole(story: Story) -> None:
    """`keel ingest` publishes every row of the table, missing labels included."""
    assert (story.ingested["status"], story.ingested["rows"]) == ("published", len(story.history))


def test_missing_labels_are_counted_not_trained_on(story: Story) -> None:
    """Training reports as many rows without a label as pandas counts, and trains on the rest."""
    data = story.trained["data"]
    missing = int(story.history["default"].isna().sum())
    assert data["missing_labels"] == missing
    assert data["rows"] == len(story.history) - missing
    assert data["train_rows"] + data["test_rows"] == data["rows"]


def test_the_gate_passed_and_latest_deployed(story: Story) -> None:
    """The first model passes its gate, and the server answers with it."""
    assert story.trained["gate"]["passed"] is True
    assert set(story.served["model_version"]) == {"credit@1"}
    assert story.served["fallback"].isna().all()


def test_training_names_the_minority_as_positive(story: Story) -> None:
    """Without --positive, `keel train --json` names the minority label (Yes) positive."""
    minority = story.history["default"].value_counts().idxmin()
    classes = story.trained["classes"]
    assert (classes["positive"], sorted(classes["classes"])) == (minority, ["No", "Yes"])


def test_served_labels_are_the_tables_words(story: Story) -> None:
    """Predictions come back as the table's own labels (Yes/No), not 1.0/0.0."""
    assert set(story.served["label"]) <= set(story.history["default"].dropna())


def test_served_probability_is_the_minority_class(story: Story) -> None:
    """The served probability ranks the minority class (Yes, 3%): ROC AUC from sklearn > 0.9."""
    counts = story.history["default"].value_counts()
    minority = counts.idxmin()
    assert counts[minority] / counts.sum() < 0.05
    truth = (story.later["default"] == minority).to_numpy()
    assert roc_auc_score(truth, story.served["probability"].astype(float)) > 0.9


def test_realised_performance_matches_sklearn(story: Story) -> None:
    """`keel performance` on the fed-back labels agrees with sklearn on the served scores."""
    minority = story.history["default"].value_counts().idxmin()
    truth = (story.later["default"] == minority).to_numpy()
    expected = roc_auc_score(truth, story.served["probability"].astype(float))
    assert story.performance["estimated"] is False
    assert story.performance["labelled"] == len(story.later)
    assert story.performance["positive"] == minority
    assert story.performance["metrics"]["roc_auc"] == pytest.approx(expected, abs=0.01)


def test_resent_keys_are_quarantined_with_their_count(story: Story) -> None:
    """Re-sending published card holders under the default policy quarantines the batch."""
    published = set(story.history["customer_id"])
    resent = story.history.iloc[100 : 100 + RESENT]
    assert story.resent["status"] == "quarantined"
    again = int(resent["customer_id"].isin(published).sum())
    assert findings(story.resent) == {"customer_id.unique_history": again}


def test_out_of_range_and_new_words_warn_with_their_counts(story: Story) -> None:
    """A batch with incomes past the range and an unseen student value is published, warned."""
    warned, history = story.warned, story.history
    assert story.warned_run["status"] == "published"
    over = int((warned["income"] > history["income"].max() * 5).sum())
    unseen = int((~warned["student"].isin(set(history["student"]))).sum())
    assert findings(story.warned_run) == {"income.range": over, "student.allowed": unseen}


def test_honest_traffic_raises_no_drift(story: Story) -> None:
    """Later card holders of the same table (scipy's KS finds no shift) raise no drift alarm."""
    from scipy.stats import ks_2samp

    for column in ("balance", "income"):
        assert ks_2samp(story.history[column], story.later[column]).pvalue > 0.01
    decisions = {c["column"]: c["decision"] for c in story.drift["columns"]}
    assert story.drift["rows"] == len(story.later) and story.drift["drifted"] == []
    assert (decisions["balance"], decisions["income"]) == ("no_drift", "no_drift")


def test_students_only_traffic_drifts_on_the_flag(story: Story) -> None:
    """A window of students only (chi-square on pandas' counts: p < 1e-6) drifts on student."""
    from scipy.stats import chi2_contingency

    students = story.later[story.later["student"] == "Yes"]
    counts = [
        story.history["student"].value_counts().reindex(["No", "Yes"], fill_value=0),
        students["student"].value_counts().reindex(["No", "Yes"], fill_value=0),
    ]
    assert chi2_contingency(counts).pvalue < 1e-6
    decisions = {c["column"]: c["decision"] for c in story.students_drift["columns"]}
    assert story.students_drift["rows"] == len(students)
    assert decisions["student"] == "drift" and "student" in story.students_drift["drifted"]
