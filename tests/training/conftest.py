"""Fixtures for the training tests: a small churn-like CSV and projects that train on it.

OpenMP is pinned to one thread (for this process and its children): the test machine is
shared, and an OpenMP pool on busy cores turns a 0.1 s fit into seconds.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

from keel.project import Project

TRAINING = """\
training:
  data: data/train.csv
  target: churned
  exclude: [customer_id]
  model:
    estimator: sklearn.ensemble.HistGradientBoostingClassifier
    params: {max_iter: 15}
  split: {by: time, column: ts, test_size: 0.25}
  seed: 7
"""
GATE = """\
gate:
  thresholds: {roc_auc: ">= 0.6"}
  vs_production: {roc_auc: {max_drop: 0.05}}
  slices: {column: region, thresholds: {roc_auc: ">= 0.5"}}
  latency_p99_ms: 1000
  max_size_mb: 10
"""


def churn_frame(rows: int = 600, seed: int = 0) -> pd.DataFrame:
    """A learnable binary problem with int, float, text and time columns."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "customer_id": [f"c_{i:05d}" for i in range(rows)],
            "age": rng.integers(18, 80, rows),
            "spend": rng.normal(50, 10, rows).round(2),
            "region": rng.choice(["north", "south", "east"], rows),
            "ts": pd.date_range("2024-01-01", periods=rows, freq="h").astype(str),
        }
    )
    logit = (frame["spend"] - 50) / 4 + (frame["region"] == "north") * 1.5 - 0.5
    frame["churned"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def write_project(root: Path, body: str, store_url: str | None = None) -> Path:
    """Write keel.yaml (name, store and ``body``) and the training CSV into ``root``."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    churn_frame().to_csv(root / "data" / "train.csv", index=False)
    store = f"store: '{store_url}'\n" if store_url else ""
    (root / "keel.yaml").write_text(f"name: churn\n{store}{body}")
    return root


@pytest.fixture
def make_project(tmp_path: Path) -> Iterator[Callable[..., Project]]:
    """Build and open a project with the given keel.yaml body; closed after the test."""
    opened: list[Project] = []

    def make(
        body: str = TRAINING + GATE,
        store_url: str | None = None,
        files: dict[str, pd.DataFrame] | None = None,
    ) -> Project:
        root = tmp_path / "p"
        for name, frame in (files or {}).items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            frame.to_csv(root / name, index=False)
        project = Project.open(write_project(root, body, store_url))
        opened.append(project)
        return project

    yield make
    for project in opened:
        project.close()
