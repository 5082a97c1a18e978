"""Train/test splits: seeded random splits and time splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from keel.training.split import random_split, time_split


def test_random_split_is_seeded() -> None:
    """The same seed gives the same split; another seed gives another."""
    first, second = random_split(100, 0.2, 1), random_split(100, 0.2, 1)
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert not np.array_equal(first[1], random_split(100, 0.2, 2)[1])


def test_random_split_partitions_rows() -> None:
    """Train and test are disjoint, cover every row, and test has the requested share."""
    train, test = random_split(50, 0.2, 0)
    assert len(test) == 10
    assert sorted([*train, *test]) == list(range(50))


def test_time_split_holds_out_the_latest_rows() -> None:
    """Every held-out row is at or after every training row."""
    times = pd.Series(pd.to_datetime(["2024-03-01", "2024-01-01", "2024-04-01", "2024-02-01"]))
    train, test = time_split(times, 0.5)
    assert times.iloc[test].min() > times.iloc[train].max()


def test_split_keeps_one_row_each_side() -> None:
    """A tiny frame still yields a non-empty train and test set."""
    train, test = random_split(2, 0.9, 0)
    assert len(train) == 1 and len(test) == 1


def test_time_split_parses_text_timestamps(tmp_path: Path) -> None:
    """Text timestamps in a non-sortable format are split by time, not by spelling."""
    from keel.project import Project
    from keel.training import train
    from tests.training.conftest import TRAINING, churn_frame

    root = tmp_path / "p"
    (root / "data").mkdir(parents=True)
    frame = churn_frame()
    frame["ts"] = pd.to_datetime(frame["ts"]).dt.strftime("%d %b %Y %H:%M")
    frame.to_csv(root / "data" / "train.csv", index=False)
    (root / "keel.yaml").write_text("name: t\n" + TRAINING)
    with Project.open(root) as project:
        version = train(project).version
    assert version.data_end == "2024-01-25 23:00:00"
