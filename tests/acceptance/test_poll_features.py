"""Point-in-time features keyed by two entities, on the 2016 election polls.

The team's label frame is one row per poll (who leads). Two sources hold the polls' margins
as seen per state and per pollster; one feature view per entity aggregates past margins
(a state's recent polls, a pollster's house effect). Every joined value is recomputed here
with pandas: only polls that ended strictly before the labelled poll's end date count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

from .story import api_key, edit_config, init, predict, rdata, run, server

pytestmark = pytest.mark.slow

WINDOWS = {"state": 30, "pollster": 90}

FEATURES_PY = """
from keel.features import Aggregation, FeatureView

state_trend = FeatureView(
    name="state_trend", source="states", entity="state", timestamp="enddate",
    features=(
        Aggregation("state_polls_30d", fn="count", window="30d"),
        Aggregation("state_margin_30d", fn="mean", column="margin", window="30d"),
    ),
)

house_effect = FeatureView(
    name="house_effect", source="pollsters", entity="pollster", timestamp="enddate",
    features=(
        Aggregation("pollster_polls_90d", fn="count", window="90d"),
        Aggregation("pollster_margin_90d", fn="mean", column="margin", window="90d"),
    ),
)
"""


def polls() -> pd.DataFrame:
    """The polls without ties, with a poll id, the Clinton-minus-Trump margin and the leader."""
    frame = rdata("dslabs", "polls_us_election_2016")
    frame = frame[frame["rawpoll_clinton"] != frame["rawpoll_trump"]].reset_index(drop=True)
    margin = frame["rawpoll_clinton"] - frame["rawpoll_trump"]
    return pd.DataFrame(
        {
            "poll_id": [f"p_{i:04d}" for i in range(len(frame))],
            "state": frame["state"],
            "pollster": frame["pollster"],
            "enddate": frame["enddate"],
            "margin": margin.round(2),
            "leader": np.where(margin > 0, "Clinton", "Trump"),
        }
    )


def expected(labels: pd.DataFrame, events: pd.DataFrame, entity: str) -> pd.DataFrame:
    """Per label row: count and mean margin of the entity's polls in the window before it;
    null when the entity had no poll at all before the label's date.

    Each label row is paired with every poll of its entity (a pandas merge), the pairs
    kept where the poll ended strictly before the label's date, then those in the window
    counted and averaged per label row."""
    days = WINDOWS[entity]
    asked = pd.DataFrame(
        {
            "key": labels[entity].to_numpy(),
            "when": pd.to_datetime(labels["enddate"]).to_numpy(),
            "row": np.arange(len(labels)),
        }
    )
    polled = pd.DataFrame(
        {
            "key": events[entity].to_numpy(),
            "end": pd.to_datetime(events["enddate"]).to_numpy(),
            "margin": events["margin"].to_numpy(),
        }
    ).dropna(subset=["key"])  # a poll without the entity is no entity's history
    pairs = asked.merge(polled, on="key")
    earlier = pairs[pairs["end"] < pairs["when"]]
    recent = earlier[earlier["end"] >= earlier["when"] - pd.Timedelta(days=days)]
    rows = pd.RangeIndex(len(labels))
    seen = rows.isin(earlier["row"])
    count = recent.groupby("row").size().reindex(rows, fill_value=0).astype(float)
    mean = recent.groupby("row")["margin"].mean().reindex(rows)
    return pd.DataFrame(
        {"count": count.where(seen).to_numpy(), "mean": mean.where(seen).to_numpy()},
        index=labels.index,
    )


@dataclass(frozen=True)
class Story:
    """The label frame, the joined training set, training and a few served answers."""

    labels: pd.DataFrame
    events: pd.DataFrame
    joined: pd.DataFrame
    built: dict[str, Any]
    trained: dict[str, Any]
    served: pd.DataFrame
    truth: dict[str, pd.DataFrame]


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Story:
    """init --from the labels, add a source per entity and features.py, ingest, build the
    training set, train on features, deploy latest, materialize and serve."""
    tmp = tmp_path_factory.mktemp("poll-features")
    table = polls()
    labels = table[["poll_id", "state", "pollster", "enddate", "leader"]]
    labels.to_csv(tmp / "labels.csv", index=False)
    root = tmp / "houses"
    init(root, tmp / "labels.csv", "--target", "leader", "--key", "poll_id", "--time", "enddate")
    for name in ("states", "pollsters"):
        table[["poll_id", "state", "pollster", "enddate", "margin"]].to_csv(
            root / "data" / f"{name}.csv", index=False
        )
    (root / "features.py").write_text(FEATURES_PY)
    edit_config(root, _feature_config())
    run("ingest", root=root)
    built = run(
        "features", "build-training-set", "--labels", str(root / "data" / "labels.csv"),
        "--out", str(tmp / "joined.csv"), "--timestamp", "enddate", root=root,
    )  # fmt: skip
    joined = pd.read_csv(tmp / "joined.csv")
    trained = run("train", root=root)
    run("deploy", "latest", root=root)
    run("features", "materialize", root=root)
    key = api_key(root)
    with server(root) as http:
        served = predict(http, key, labels[["poll_id", "state", "pollster"]].tail(100))
    truth = {entity: expected(labels, table, entity) for entity in WINDOWS}
    return Story(labels, table, joined, built, trained, served, truth)


def _feature_config() -> dict[str, Any]:
    source = {"kind": "csv", "key": "poll_id", "timestamp": "enddate"}
    return {
        "sources": {
            "states": {**source, "path": "data/states.csv"},
            "pollsters": {**source, "path": "data/pollsters.csv"},
        },
        "features": {"module": "features.py", "online": "sqlite"},
        "training": {
            "data": "features",
            "labels": "data/labels.csv",
            "label_time": "enddate",
            "exclude": ["poll_id", "enddate", "state", "pollster"],
        },
        "serving": {"timeout_ms": 5000, "rate_limit": None, "unknown_entity": "serve"},
    }


def test_no_label_row_is_dropped(story: Story) -> None:
    """The training set has one row per label, in order."""
    assert story.built["rows"] == len(story.labels)
    assert story.joined["poll_id"].tolist() == story.labels["poll_id"].tolist()


@pytest.mark.parametrize(
    ("entity", "count", "mean"),
    [
        ("state", "state_polls_30d", "state_margin_30d"),
        ("pollster", "pollster_polls_90d", "pollster_margin_90d"),
    ],
)
def test_each_view_joins_on_its_own_entity_point_in_time(
    story: Story, entity: str, count: str, mean: str
) -> None:
    """Each view's values equal pandas' count and mean of that entity's earlier polls."""
    truth = story.truth[entity]
    np.testing.assert_allclose(story.joined[count].to_numpy(float), truth["count"], equal_nan=True)
    np.testing.assert_allclose(
        story.joined[mean].to_numpy(float), truth["mean"], rtol=1e-6, atol=1e-9, equal_nan=True
    )


def test_missing_counts_are_the_rows_without_history(story: Story) -> None:
    """The missing count of each feature is pandas' count of rows with no earlier poll."""
    for entity, feature in [("state", "state_polls_30d"), ("pollster", "pollster_polls_90d")]:
        without = int(story.truth[entity]["count"].isna().sum())
        assert story.built["missing"][feature] == without


def test_trained_on_features_and_gated(story: Story) -> None:
    """The model trained on the joined set passes its gate and answers over HTTP."""
    assert story.trained["gate"]["passed"] is True
    assert set(story.served["model_version"]) == {"houses@1"}
    assert set(story.served["label"]) <= {"Clinton", "Trump"}
