"""Lineage of a run trained on a source: which data versions, their rows, the time span.

Every expected number is computed with pandas from the CSV files the tests write.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pandas as pd

from keel.project import Project
from keel.training import Registry, read_status, train
from keel.training.status import render_status
from tests.helpers import keel, registry_row
from tests.training.conftest import TRAINING as FILE_TRAINING
from tests.training.test_source_data import SOURCE, TRAINING, _months, _two_versions

MakeProject = Callable[..., Project]


def _span(frame: pd.DataFrame) -> tuple[str, str]:
    times = pd.to_datetime(frame["ts"])
    return str(times.min()), str(times.max())


def test_record_names_each_version_with_its_rows(make_project: MakeProject) -> None:
    """The run record lists the versions read, oldest first, with their row counts."""
    project, ids = _two_versions(make_project)
    first, second = _months()
    version = train(project).version
    lineage = Registry(project.store).record(version.version)["data"]["lineage"]
    assert lineage["source"] == "flights"
    assert lineage["versions"] == [
        {"id": ids[0], "rows": len(first)},
        {"id": ids[1], "rows": len(second)},
    ]
    assert lineage["rows"] == len(first) + len(second)


def test_time_span_is_the_sources_timestamp(make_project: MakeProject) -> None:
    """data_start/data_end are the min and max of the source's timestamp: column."""
    project, _ = _two_versions(make_project)
    start, end = _span(pd.concat(_months()))
    version = train(project).version
    record = Registry(project.store).record(version.version)["data"]
    assert (version.data_start, version.data_end) == (start, end)
    assert (record["lineage"]["start"], record["lineage"]["end"]) == (start, end)


def test_status_says_what_production_was_trained_on(make_project: MakeProject) -> None:
    """`keel status` names the source version, how many versions, rows and dates."""
    project, ids = _two_versions(make_project)
    both = pd.concat(_months())
    start, end = _span(both)
    version = train(project).version
    Registry(project.store).transition(version.version, "production", "ann", "first", True)
    result = keel("status", "--project", str(project.root))
    assert result.returncode == 0, result.stderr
    expected = (
        f"data: flights@{ids[1][:12]} (2 versions, {len(both):,} rows, {start[:10]} to {end[:10]})"
    )
    assert expected in result.stdout


def test_status_json_carries_the_lineage(make_project: MakeProject) -> None:
    """`keel status --json` gives production's data versions with their row counts."""
    project, ids = _two_versions(make_project)
    first, second = _months()
    version = train(project).version
    Registry(project.store).transition(version.version, "production", "ann", "first", True)
    result = keel("status", "--json", "--project", str(project.root))
    lineage = json.loads(result.stdout)["production"]["data_lineage"]
    assert [(v["id"], v["rows"]) for v in lineage["versions"]] == [
        (ids[0], len(first)),
        (ids[1], len(second)),
    ]


def test_status_reads_lineage_on_every_store(make_project: MakeProject, store_url: str) -> None:
    """The lineage comes out of the run record on SQLite and PostgreSQL alike."""
    project = make_project(SOURCE + TRAINING.format(data="flights"), store_url)
    lineage = {"source": "flights", "versions": [{"id": "a" * 64, "rows": 3}], "rows": 3}
    row = registry_row(data_ref="flights@aaaaaaaaaaaa", data_rows=3)
    registry = Registry(project.store)
    registry.register(row, {"data": {"lineage": lineage}}, "ann")
    registry.transition(1, "production", "ann", "first", True)
    status = read_status(project.root)
    assert status["production"]["data_lineage"] == lineage
    assert "  data: flights@aaaaaaaaaaaa (1 version, 3 rows)" in render_status(status)


def test_status_without_a_time_span_shows_no_question_marks(make_project: MakeProject) -> None:
    """A file trained without a time column shows its rows, not '? to ?'."""
    body = FILE_TRAINING.replace("{by: time, column: ts, test_size: 0.25}", "{by: random}")
    project = make_project(body.replace("[customer_id]", "[customer_id, ts]"))
    version = train(project).version
    Registry(project.store).transition(version.version, "production", "ann", "first", True)
    lines = render_status(read_status(project.root))
    labelled = pd.read_csv(project.root / "data" / "train.csv")["churned"].notna().sum()
    assert f"  data: {labelled:,} rows" in lines
