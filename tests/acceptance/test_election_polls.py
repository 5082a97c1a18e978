"""dslabs' 2016 US election polls: dated rows (start and end dates), two entities (state,
pollster), and real nulls (grade, sample size, Johnson's share).

The team predicts which candidate a poll shows ahead, time-split on the poll's end date.
Polls arrive in two batches (up to September, then October and November); a second model
is trained on both, passes its gate against production and is deployed; `keel status`
says what it was trained on, with the dates of the end-date column.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.helpers import keel

from .story import api_key, edit_config, init, predict, rdata, run, server

pytestmark = pytest.mark.slow

CUTOFF = "2016-10-01"
KEPT = ["state", "pollster", "grade", "samplesize", "population", "rawpoll_johnson"]


def polls_table() -> pd.DataFrame:
    """Polls with an id, who leads (ties left out), and no column that gives the answer away."""
    polls = rdata("dslabs", "polls_us_election_2016")
    polls = polls[polls["rawpoll_clinton"] != polls["rawpoll_trump"]].reset_index(drop=True)
    leader = (polls["rawpoll_clinton"] > polls["rawpoll_trump"]).map(
        {True: "Clinton", False: "Trump"}
    )
    table = polls[["startdate", "enddate", *KEPT]].assign(leader=leader)
    table.insert(0, "poll_id", [f"p_{i:04d}" for i in range(len(table))])
    return table


@dataclass(frozen=True)
class Story:
    """Both batches and what each command answered."""

    early: pd.DataFrame
    late: pd.DataFrame
    first_run: dict[str, Any]
    second_run: dict[str, Any]
    retrained: dict[str, Any]
    status: dict[str, Any]
    status_text: str
    served: pd.DataFrame


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Story:
    """Two batches ingested, two models trained, latest deployed each time, one served."""
    tmp = tmp_path_factory.mktemp("polls")
    table = polls_table()
    early, late = table[table["enddate"] < CUTOFF], table[table["enddate"] >= CUTOFF]
    early.to_csv(tmp / "polls.csv", index=False)
    root = tmp / "election"
    init(root, tmp / "polls.csv", "--target", "leader", "--key", "poll_id", "--time", "enddate")
    edit_config(root, {"serving": {"timeout_ms": 5000, "rate_limit": None}})
    _glob(root)
    first_run = run("ingest", root=root)["runs"][0]
    run("train", root=root)
    run("deploy", "latest", root=root)
    late.to_csv(root / "data" / "polls_late.csv", index=False)
    second_run = run("ingest", root=root)["runs"][0]
    retrained = run("train", root=root)
    run("deploy", "latest", root=root)
    status = run("status", root=root)
    status_text = keel("status", "--project", str(root)).stdout
    key = api_key(root)
    with server(root) as http:
        served = predict(http, key, late[["poll_id", *KEPT]].head(200))
    return Story(early, late, first_run, second_run, retrained, status, status_text, served)


def _glob(root: Path) -> None:
    import yaml

    path = root / "keel.yaml"
    config = yaml.safe_load(path.read_text())
    config["sources"]["polls"]["path"] = "data/polls*.csv"
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def test_both_batches_are_published(story: Story) -> None:
    """Each batch is published whole."""
    assert (story.first_run["status"], story.first_run["rows"]) == ("published", len(story.early))
    assert (story.second_run["status"], story.second_run["rows"]) == ("published", len(story.late))


def test_second_model_trains_on_both_versions(story: Story) -> None:
    """The retrained model read both data versions: every poll, none without a label."""
    data = story.retrained["data"]
    assert data["rows"] == len(story.early) + len(story.late)
    assert data["missing_labels"] == 0
    assert [v["rows"] for v in data["lineage"]["versions"]] == [len(story.early), len(story.late)]


def test_status_data_line_spans_the_end_dates(story: Story) -> None:
    """`keel status` names 2 versions, every row, and the first and last end date."""
    both = pd.concat([story.early, story.late])
    start, end = both["enddate"].min(), both["enddate"].max()
    line = f"(2 versions, {len(both):,} rows, {start} to {end})"
    assert line in story.status_text


def test_the_retrained_model_passes_its_gate_and_serves(story: Story) -> None:
    """The second model beats chance and production's AUC less 0.01, and answers as @2."""
    assert story.retrained["gate"]["passed"] is True
    assert set(story.served["model_version"]) == {"election@2"}
    assert story.served["fallback"].isna().all()
    assert set(story.served["label"]) <= {"Clinton", "Trump"}
