"""The example project's training table: labels, attributes and 30-day counts before."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from keel.errors import TrainingDataError
from keel.training import build_training_table

CUSTOMERS = """\
customer_id,signup_at,plan,region,age,income,monthly_charges,updated_at
c_000001,2025-01-01 00:00:00,basic,north,30,1000.00,20.00,2025-01-01 00:00:00
c_000001,2025-01-01 00:00:00,premium,north,30,1000.00,80.00,2025-06-01 00:00:00
c_000002,2025-12-01 00:00:00,basic,south,40,2000.00,25.00,2025-12-01 00:00:00
"""
EVENTS = """\
event_id,customer_id,event_time,kind,amount
e_1,c_000001,2025-12-01 23:59:59,login,0.00
e_2,c_000001,2025-12-02 00:00:00,login,0.00
e_3,c_000001,2025-12-31 23:59:59,ticket,0.00
e_4,c_000001,2026-01-01 00:00:00,login,0.00
e_5,c_000002,2025-12-15 00:00:00,login,0.00
"""
LABELS = """\
customer_id,prediction_time,churned,label_time
c_000001,2026-01-01 00:00:00,1,2026-01-31 00:00:00
c_000002,2026-01-01 00:00:00,0,2026-01-31 00:00:00
"""


@pytest.fixture
def example_root(tmp_path: Path) -> Path:
    """A tiny hand-written example data folder with known boundary cases."""
    (tmp_path / "data" / "events").mkdir(parents=True)
    (tmp_path / "data" / "customers.csv").write_text(CUSTOMERS)
    (tmp_path / "data" / "events" / "events-2025-12.csv").write_text(EVENTS)
    (tmp_path / "data" / "labels.csv").write_text(LABELS)
    return tmp_path


def _row(frame: pd.DataFrame, customer: str) -> pd.Series:
    return frame.set_index("customer_id").loc[customer]


def test_counts_only_the_30_days_strictly_before(example_root: Path) -> None:
    """Events at prediction_time or more than 30 days before it are not counted."""
    row = _row(build_training_table(example_root), "c_000001")
    assert (row["logins_30d"], row["tickets_30d"]) == (1, 1)


def test_uses_the_latest_customer_row(example_root: Path) -> None:
    """A customer listed twice contributes its most recently updated attributes."""
    assert _row(build_training_table(example_root), "c_000001")["plan"] == "premium"


def test_tenure_in_whole_days(example_root: Path) -> None:
    """Tenure is whole days from signup to prediction time."""
    assert _row(build_training_table(example_root), "c_000002")["tenure_days"] == 31


def test_one_row_per_label(example_root: Path) -> None:
    """The table has one row per label, with the label column."""
    frame = build_training_table(example_root)
    assert len(frame) == 2 and list(frame["churned"]) == [1, 0]


def test_missing_example_data(tmp_path: Path) -> None:
    """Without the example files the error says how to generate them."""
    with pytest.raises(TrainingDataError, match="keel init"):
        build_training_table(tmp_path)


EXAMPLE = """\
name: churn
training:
  data: keel.training.example:build_training_table
  labels: data/labels.csv
  target: churned
  exclude: [customer_id, signup_at]  # ids and raw timestamps are not features
  model:
    estimator: sklearn.ensemble.HistGradientBoostingClassifier
    params: {max_iter: 30}
  split: {by: time, column: prediction_time, test_size: 0.2}
  seed: 42
gate:
  thresholds: {roc_auc: ">= 0.55"}
  hard_examples: {file: data/hard_examples.csv, must_pass: false}
  max_size_mb: 50
"""


def test_example_project_trains_and_gates(tmp_path: Path) -> None:
    """On generated example data, the table trains and passes a gate with hard examples."""
    from keel.examples import generate
    from keel.project import Project
    from keel.training import train

    generate(tmp_path, rows=400, seed=3)
    (tmp_path / "keel.yaml").write_text(EXAMPLE)
    with Project.open(tmp_path) as project:
        decision = train(project).decision
    assert decision is not None and decision.passed
    assert "hard_examples:accuracy" in [check.name for check in decision.checks]
