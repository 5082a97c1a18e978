"""The whole cluster story through the commands a user runs, on a real Dask cluster
(``dask scheduler`` and two ``dask worker`` processes on loopback), checked against the
same commands with ``compute.engine: local`` on the same files.

Two throwaway projects hold the same partitioned source (four Parquet files: several
customers, a string label, null amounts and categories, a flag column and a long-tailed
category) and differ only in ``compute:``. Each runs, as subprocesses::

    keel ingest
    keel validate --source events --latest
    keel features build-training-set --labels labels.csv --out set.parquet
    keel features materialize
    keel train
    keel deploy 1 --reason "first model"
    keel predict --batch events --out scored.parquet

and then each project's server answers ``/v1/predict`` over real HTTP for held-out rows.
Every expected number comes from pandas, NumPy or scikit-learn reading the files.

About 4-5 minutes at a load average of 15-17 on the shared test machine, where one ``keel``
command takes 10-20 s to start and run (hence the long timeout); the two projects' stories
run side by side.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from keel.project import Project
from keel.serving import create_app
from keel.training import Registry
from tests.compute.conftest import REPO, Cluster
from tests.serving.helpers import create_key, over_http

START = pd.Timestamp("2026-04-01")
CATEGORIES = [f"k{i:02d}" for i in range(40)]
WEIGHTS = 1 / np.arange(1, 41) ** 1.5  # a long tail: k00 is common, k39 rare
FILES = {"a": (0, 300), "b": (300, 250), "c": (550, 200), "d": (750, 250)}
CUSTOMERS = 60
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

FEATURES = """\
from keel.features import FeatureView

balances = FeatureView(
    name="balances", source="events", entity="customer_id", timestamp="event_time",
    features=("balance",),
)
"""


def events(start: int, rows: int) -> pd.DataFrame:
    """Events ``start``.. (ids and minutes unique across files) with a known signal: a
    large amount, the flag and the three commonest categories raise the odds of "yes"."""
    rng = np.random.default_rng(start + 1)
    category = rng.choice(CATEGORIES, rows, p=WEIGHTS / WEIGHTS.sum()).astype(object)
    amount = rng.gamma(2.0, 50.0, rows).round(2)
    flagged = rng.uniform(size=rows) < 0.25
    logit = 0.02 * (amount - 100) + 1.5 * flagged + np.isin(category, CATEGORIES[:3]) - 0.3
    label = np.where(rng.uniform(size=rows) < 1 / (1 + np.exp(-logit)), "yes", "no")
    amount[rng.choice(rows, rows // 20, replace=False)] = np.nan
    balance = rng.normal(500, 200, rows).round(2)
    category[rng.choice(rows, 3, replace=False)] = None
    return pd.DataFrame(
        {
            "event_id": np.arange(start, start + rows),
            "customer_id": [f"c{i:03d}" for i in rng.integers(0, CUSTOMERS, rows)],
            "event_time": START + pd.to_timedelta(np.arange(start, start + rows) * 7, "min"),
            "amount": amount,
            "flagged": flagged,
            "category": category,
            "balance": balance,
            "label": label,
        }
    )


def config(compute: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "story",
        "compute": compute,
        "sources": {
            "events": {
                "kind": "parquet",
                "path": "data/events/",
                "partitioned": True,
                "key": "event_id",
                "timestamp": "event_time",
                "checks": {
                    "columns": {
                        "customer_id": {"type": "string", "not_null": True},
                        "event_time": {"type": "timestamp"},
                        "amount": {
                            "type": "float",
                            "range": [0, 300],
                            "max_null_rate": 0.03,
                            "severity": "warn",
                        },
                        "flagged": {"type": "bool"},
                        "category": {"type": "string", "max_null_rate": 0.02},
                        "label": {"type": "string", "allowed": ["yes", "no"]},
                    },
                },
            }
        },
        "features": {"module": "features.py"},
        "training": {
            "data": "events",
            "target": "label",
            "positive_class": "yes",
            "exclude": ["event_id", "event_time", "customer_id", "balance"],
            "model": {
                "estimator": "xgboost.XGBClassifier",
                "params": {"n_estimators": 40, "max_depth": 3, "n_jobs": 1, "tree_method": "hist"},
            },
            "seed": 11,
        },
        "gate": {"thresholds": {"roc_auc": ">= 0.6"}},
        # the scored table carries the label, which is not an input of the model
        "serving": {
            "timeout_ms": 60000,
            "rate_limit": None,
            "validation": {"extra_fields": "ignore"},
        },
    }


def project(root: Path, compute: dict[str, Any]) -> Path:
    """A project with the four event files, a held-out folder and label events."""
    (root / "data" / "events").mkdir(parents=True)
    for name, (start, rows) in FILES.items():
        events(start, rows).to_parquet(root / "data" / "events" / f"{name}.parquet", index=False)
    labels().to_csv(root / "labels.csv", index=False)
    (root / "features.py").write_text(FEATURES)
    (root / "keel.yaml").write_text(yaml.safe_dump(config(compute), sort_keys=False))
    return root


def heldout() -> pd.DataFrame:
    """Fresh events from the same generator (ids past the source's)."""
    return events(5000, 400)


def labels() -> pd.DataFrame:
    """Each customer at three moments: before any event, mid-way, after the last."""
    moments = [
        START - pd.Timedelta(days=1),
        START + pd.Timedelta(days=3),
        START + pd.Timedelta(days=8),
    ]
    return pd.DataFrame(
        [{"customer_id": f"c{i:03d}", "timestamp": t} for t in moments for i in range(CUSTOMERS)]
    )


def the_table() -> pd.DataFrame:
    """The source's rows as pandas reads its files, in file order."""
    return pd.concat([events(*spec) for spec in FILES.values()], ignore_index=True)


def keel(root: Path, *args: str) -> Any:
    """``keel ARGS --json`` in ``root`` as a user runs it; its JSON answer."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "keel", *args, "--json"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, f"keel {' '.join(args)}: {done.stderr}"
    return json.loads(done.stdout)


@dataclass
class Story:
    """What one project's commands answered and wrote."""

    root: Path
    ingested: dict[str, Any]
    validated: dict[str, Any]
    training_set: pd.DataFrame
    trained: dict[str, Any]
    scored: dict[str, Any]
    scored_rows: pd.DataFrame


def run_story(root: Path) -> Story:
    (ingested,) = keel(root, "ingest")["runs"]
    validated = keel(root, "validate", "--source", "events", "--latest")
    keel(root, "features", "build-training-set", "--labels", "labels.csv", "--out", "set.parquet")
    keel(root, "features", "materialize")  # the server looks each view up, used or not
    trained = keel(root, "train")
    keel(root, "deploy", "1", "--reason", "first model")
    scored = keel(root, "predict", "--batch", "events", "--out", "scored.parquet")
    return Story(
        root, ingested, validated, pd.read_parquet(root / "set.parquet"), trained, scored,
        pd.read_parquet(root / "scored.parquet"),
    )  # fmt: skip


@pytest.fixture(scope="module")
def stories(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> tuple[Story, Story]:
    """(the local project's story, the cluster project's story), told side by side."""
    base = tmp_path_factory.mktemp("story")
    dask = {"engine": "dask", "address": cluster.address, "partition_rows": 200}
    with ThreadPoolExecutor(2) as pool:
        local = pool.submit(run_story, project(base / "local", {"engine": "local"}))
        remote = pool.submit(run_story, project(base / "dask", dask))
        return local.result(), remote.result()


def served(root: Path, rows: pd.DataFrame) -> list[dict[str, Any]]:
    """The production model's answers to ``rows`` from ``/v1/predict`` over real HTTP."""
    with Project.open(root) as opened:
        key = create_key(opened, "predict")
        instances = json.loads(rows.to_json(orient="records", date_format="iso"))
        with over_http(create_app(opened)) as url:
            answered = httpx.post(
                f"{url}/v1/predict", json={"instances": instances},
                headers={"Authorization": f"Bearer {key}"}, timeout=60,
            )  # fmt: skip
    assert answered.status_code == 200, answered.text
    predictions: list[dict[str, Any]] = answered.json()["predictions"]
    return predictions


def findings(report: dict[str, Any]) -> list[tuple[str, str, Any]]:
    return sorted((f["check"], f["status"], f.get("violations")) for f in report["findings"])


def test_the_data_version_and_its_findings_match(stories: tuple[Story, Story]) -> None:
    """Both engines publish one version of the 1,000 rows pandas reads, with the same
    findings; the amount range warning counts the rows pandas finds above 300."""
    local, dask = stories
    table = the_table()
    for story in stories:
        assert story.ingested["status"] == "published", story.ingested["message"]
        assert story.ingested["rows"] == len(table) == 1000
    assert local.ingested["version_id"] == dask.ingested["version_id"]
    assert findings(local.ingested["report"]) == findings(dask.ingested["report"])
    assert findings(local.validated) == findings(dask.validated)
    ranged = [f for f in dask.validated["findings"] if f["check"] == "amount.range"]
    assert sum(f["violations"] for f in ranged) == int((table["amount"] > 300).sum()) > 0


def test_the_training_set_matches_row_for_row(stories: tuple[Story, Story]) -> None:
    """``keel features build-training-set`` gives the same rows on both engines (sorted,
    ``assert_frame_equal``), and the balances are pandas ``merge_asof``'s."""
    local, dask = stories
    order = ["customer_id", "timestamp"]
    ours = dask.training_set.sort_values(order).reset_index(drop=True)
    pd.testing.assert_frame_equal(
        local.training_set.sort_values(order).reset_index(drop=True), ours
    )
    left = labels().assign(timestamp=lambda f: pd.to_datetime(f["timestamp"]))
    table = the_table().sort_values("event_time")
    expected = pd.merge_asof(
        left.sort_values("timestamp"), table[["customer_id", "event_time", "balance"]],
        left_on="timestamp", right_on="event_time", by="customer_id",
    ).sort_values(order).reset_index(drop=True)  # fmt: skip
    np.testing.assert_allclose(ours["balance"].to_numpy(float), expected["balance"].to_numpy(float))
    assert ours["balance"].isna().sum() == CUSTOMERS  # the labels before any event


def test_the_booster_trained_on_the_cluster_predicts_as_the_local_one(
    stories: tuple[Story, Story],
) -> None:
    """Both models train on the same 1,000 rows (the dask project's read from the
    partitions by one task per file on the workers, kept there, and fitted through
    XGBoost's Dask interface there) and answer ``/v1/predict`` for 400 held-out rows
    closely: within 0.05 in probability each, 0.01 on average, and ROC AUCs
    (scikit-learn) within 0.02.

    Closeness is what XGBoost promises, not equality: on Dask each worker sketches the
    quantiles of its own partitions and the sketches are merged, and the histograms are
    summed across workers in another order, so with more distinct values than ``max_bin``
    a split threshold (and the float sums) can differ from the one-process fit. On these
    1,000 rows (few enough that the sketches are exact) the probabilities were identical
    in every run we made, which the tolerances allow but do not require."""
    local, dask = stories
    with Project.open(dask.root) as opened:
        compute = Registry(opened.store).record(1)["compute"]
    assert compute["fit"] == "dask" and compute["workers"] == 2
    assert compute["rows_on"] == "workers"  # the table was never gathered here
    assert compute["partitions"] == len(FILES)  # a partition per file
    for story in stories:
        assert story.trained["data"]["lineage"]["rows"] == 1000
    truth = heldout()["label"] == "yes"
    ours, theirs = (served(s.root, heldout().drop(columns="label")) for s in (dask, local))
    ours, theirs = (np.array([p["probability"] for p in s], dtype=float) for s in (ours, theirs))
    assert len(ours) == len(truth) == 400
    assert np.abs(ours - theirs).max() < 0.05
    assert np.abs(ours - theirs).mean() < 0.01
    auc_ours, auc_theirs = roc_auc_score(truth, ours), roc_auc_score(truth, theirs)
    assert abs(auc_ours - auc_theirs) < 0.02 and auc_ours > 0.7


def test_batch_scoring_gives_every_row_with_the_fields_of_v1_predict(
    stories: tuple[Story, Story],
) -> None:
    """``keel predict --batch events`` scores every row pandas reads, and each output row
    has exactly the fields ``/v1/predict`` answers with over HTTP (plus nothing else)."""
    local, dask = stories
    table = the_table()
    answers = served(dask.root, table.drop(columns="label").head(3))
    fields = set(answers[0])
    np.testing.assert_allclose(
        dask.scored_rows["probability"].head(3).to_numpy(float),
        [p["probability"] for p in answers],
        atol=1e-9,
    )
    for story in stories:
        assert story.scored["rows"] == len(story.scored_rows) == len(table) == 1000
        assert set(story.scored_rows.columns) == fields
    assert local.scored["engine"] == "local" and dask.scored["engine"] == "dask"
