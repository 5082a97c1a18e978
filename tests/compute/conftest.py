"""The cluster tests' project with a production model to score, and their helpers; the
cluster itself (``Cluster``, ``start_cluster`` and the session fixture ``cluster``) is
tests/cluster.py's."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from keel.project import Project
from tests.cluster import DASK, REPO, Cluster, _environment, start_cluster
from tests.serving.helpers import churn_frame, register_model

__all__ = ["DASK", "REPO", "Cluster", "_environment", "start_cluster"]


def table(rows: int, seed: int) -> pd.DataFrame:
    """Rows to score: ``churn_frame``'s inputs with a few missing and out-of-range values,
    so validation has findings to report."""
    frame = churn_frame(rows, seed).drop(columns=["churned"])
    rng = np.random.default_rng(seed)
    frame = frame.astype({"spend": "float64"})
    frame.loc[rng.choice(rows, 3, replace=False), "spend"] = np.nan
    frame.loc[rng.choice(rows, 2, replace=False), "tenure"] = 10_000
    return frame


@pytest.fixture
def served_project(project_dir: Path, tmp_path: Path) -> Path:
    """A project whose production model is the serving tests' churn classifier, and a
    folder ``data/batch`` of three Parquet files (250, 180 and 70 rows) to score."""
    # a long model deadline: on a loaded machine the server must not answer by fallback
    (project_dir / "keel.yaml").write_text(
        "name: churn\ncompute:\n  partition_rows: 100\nserving:\n  timeout_ms: 60000\n"
    )
    with Project.open(project_dir) as project:
        register_model(project, tmp_path)
    folder = project_dir / "data" / "batch"
    folder.mkdir(parents=True)
    for i, rows in enumerate((250, 180, 70)):
        table(rows, seed=i).to_parquet(folder / f"part-{i}.parquet", index=False)
    return project_dir


def expected_inputs(project_dir: Path) -> pd.DataFrame:
    """The rows of ``data/batch`` in file order, read by pandas (not by Keel)."""
    files = sorted((project_dir / "data" / "batch").glob("*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def assert_materialized_alike(local: Path, cluster: Path, at: datetime) -> None:
    """``materialize`` at ``at`` in the ``local`` project and in the ``cluster`` one writes
    the same views and the same entities, times and values to each one's online store."""
    from keel.features import FeatureStore

    found = []
    for root in (local, cluster):
        with Project.open(root) as project:
            store = FeatureStore.open(project)
            try:
                done = store.materialize(at)
                keys = [
                    (snapshot.view, entity)
                    for snapshot in (
                        store.offline.snapshot(v, at) for v in store.features.views.values()
                    )
                    for entity, _, _ in store.offline.latest_rows(snapshot, None)
                ]
                rows = store.online.read(keys)
                found.append(({(m.view, m.written) for m in done}, rows))
            finally:
                store.close()
    (local_done, local_rows), (cluster_done, cluster_rows) = found
    assert cluster_done == local_done
    assert len(local_rows) > 10
    assert {k: (r.feature_ts, r.values) for k, r in cluster_rows.items()} == {
        k: (r.feature_ts, r.values) for k, r in local_rows.items()
    }
