"""Rows without a label are counted and reported, never dropped silently.

Expected counts are computed with pandas from the CSV files the tests write.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from keel.errors import TrainingDataError
from keel.project import Project
from keel.training import Registry, read_status, train
from keel.training.status import render_status
from tests.helpers import keel
from tests.training.test_source_data import SOURCE, TRAINING, _months, _publish

MakeProject = Callable[..., Project]


def _unlabelled(frame: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    """``frame`` with the label blanked on a random ``share`` of its rows."""
    out = frame.copy()
    blank = np.random.default_rng(seed).random(len(out)) < share
    out["churned"] = out["churned"].astype("float").where(~blank)
    return out


def _project(make_project: MakeProject) -> tuple[Project, pd.DataFrame]:
    """A source of two batches with some labels missing; returns the rows as written."""
    project = make_project(SOURCE + TRAINING.format(data="flights"))
    first, second = (_unlabelled(f, 0.1, seed) for seed, f in enumerate(_months()))
    _publish(project, "a.csv", first)
    _publish(project, "b.csv", second)
    return project, pd.concat([first, second], ignore_index=True)


def test_record_counts_rows_without_a_label(make_project: MakeProject) -> None:
    """The run record holds how many rows had no label; the rest are trained on."""
    project, written = _project(make_project)
    version = train(project).version
    data = Registry(project.store).record(version.version)["data"]
    assert data["missing_labels"] == written["churned"].isna().sum() > 0
    assert version.data_rows == written["churned"].notna().sum()


def test_keel_train_prints_the_count(make_project: MakeProject) -> None:
    """`keel train` says how many rows had no label and were left out."""
    project, written = _project(make_project)
    result = keel("train", "--project", str(project.root))
    assert result.returncode == 0, result.stderr
    expected = f"{written['churned'].isna().sum():,} rows have no churned label"
    assert expected in result.stdout


def test_keel_train_json_has_the_count(make_project: MakeProject) -> None:
    """`keel train --json` carries the count under data.missing_labels."""
    project, written = _project(make_project)
    result = keel("train", "--json", "--project", str(project.root))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)["data"]
    assert data["missing_labels"] == written["churned"].isna().sum()


def test_status_shows_rows_without_a_label(make_project: MakeProject) -> None:
    """`keel status` names how many rows of production's data had no label."""
    project, written = _project(make_project)
    version = train(project).version
    Registry(project.store).transition(version.version, "production", "ann", "first", True)
    status = read_status(project.root)
    assert status["production"]["missing_labels"] == written["churned"].isna().sum()
    line = next(text for text in render_status(status) if text.startswith("  data:"))
    assert line.endswith(f", {written['churned'].isna().sum():,} without a label)")


def test_every_label_missing_is_one_sentence(make_project: MakeProject) -> None:
    """A source whose target column is empty everywhere: an error naming the column."""
    project = make_project(SOURCE + TRAINING.format(data="flights"))
    _publish(project, "a.csv", _unlabelled(_months()[0], 1.0, 0))
    with pytest.raises(TrainingDataError, match=r"^every row's target 'churned' is missing"):
        train(project)


def test_every_label_missing_on_the_command_line(make_project: MakeProject) -> None:
    """`keel train` exits 1 with the sentence on stderr and no traceback."""
    project = make_project(SOURCE + TRAINING.format(data="flights"))
    first = _unlabelled(_months()[0], 1.0, 0)
    _publish(project, "a.csv", first)
    result = keel("train", "--project", str(project.root))
    assert result.returncode == 1
    assert f"every row's target 'churned' is missing ({len(first)} rows)" in result.stderr
    assert "Traceback" not in result.stderr
