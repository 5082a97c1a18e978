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
    versions: list[dict[str, Any]]
    profiles: list[dict[str, Any]]


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
    versions: list[dict[str, Any]] = run("data", "list", root=root)  # type: ignore[assignment]
    profiles = [run("data", "show", v["id"][:12], root=root)["profile"] for v in versions]
    key = api_key(root)
    with server(root) as http:
        served = predict(http, key, late[["poll_id", *KEPT]].head(200))
    return Story(
        early,
        late,
        first_run,
        second_run,
        retrained,
        status,
        status_text,
        served,
        versions,
        profiles,
    )


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


def test_each_version_spans_its_batchs_end_dates(story: Story) -> None:
    """`keel data list` gives each version the first and last end date pandas finds."""
    spans = [(v["time_min"][:10], v["time_max"][:10]) for v in story.versions]
    batches = [story.early, story.late]
    assert spans == [(b["enddate"].min(), b["enddate"].max()) for b in batches]


def test_profiles_count_the_real_nulls(story: Story) -> None:
    """Each version's profile counts the nulls pandas counts in its batch, column by column
    (grade, samplesize and Johnson's share have real gaps)."""
    for batch, profile in zip([story.early, story.late], story.profiles, strict=True):
        nulls = {c["name"]: c["nulls"] for c in profile["columns"]}
        assert nulls == batch.isna().sum().to_dict()
    assert story.early["grade"].isna().sum() > 0 and story.late["grade"].isna().sum() > 0


def test_profiles_count_the_grades(story: Story) -> None:
    """The grade column's top values and counts are pandas' value counts of the batch."""
    for batch, profile in zip([story.early, story.late], story.profiles, strict=True):
        grade = next(c for c in profile["columns"] if c["name"] == "grade")
        counted = batch["grade"].value_counts().to_dict()
        assert len(counted) <= len(grade["top"])
        assert {g: n for g, n in grade["top"]} == counted


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
