"""A real Dask cluster on loopback (one scheduler, two workers, each a process started
by pid and stopped with a deadline), and a project with a production model to score."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from keel.project import Project
from tests.helpers import die_with_parent, free_port
from tests.serving.helpers import churn_frame, register_model

REPO = Path(__file__).resolve().parents[2]
DASK = Path(sys.executable).with_name("dask")


@dataclass
class Cluster:
    """The scheduler's address and the processes behind it."""

    address: str
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def add_worker(self, seconds: float = 90) -> subprocess.Popen[bytes]:
        """One more ``dask worker``; returns once the scheduler counts it."""
        from distributed import Client

        with Client(self.address, timeout=seconds, set_as_default=False) as client:
            known = len(client.scheduler_info(n_workers=-1)["workers"])
            worker = _worker(self.address)
            self.workers.append(worker)
            client.wait_for_workers(known + 1, timeout=seconds)
        return worker

    def stop(self, deadline: float = 20) -> None:
        """SIGTERM every process, then SIGKILL whatever still runs after ``deadline`` s."""
        processes = [*self.workers, self.scheduler]
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        ends = time.monotonic() + deadline
        for process in processes:
            try:
                process.wait(max(ends - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def _environment() -> dict[str, str]:
    path = os.pathsep.join([str(REPO / "src"), str(REPO)])
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def _worker(address: str) -> subprocess.Popen[bytes]:
    command = [str(DASK), "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard"]
    quiet = subprocess.DEVNULL
    return subprocess.Popen(
        [*command, "--host", "127.0.0.1"],
        stdout=quiet,
        stderr=quiet,
        env=_environment(),
        preexec_fn=die_with_parent,
    )


def start_cluster(workers: int = 2, seconds: float = 90) -> Cluster:
    """``dask scheduler`` and ``workers`` x ``dask worker`` on free loopback ports; returns
    once the scheduler reports every worker."""
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    quiet = subprocess.DEVNULL
    scheduler = subprocess.Popen(
        [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        stdout=quiet,
        stderr=quiet,
        env=_environment(),
        preexec_fn=die_with_parent,
    )
    cluster = Cluster(address, scheduler)
    cluster.workers = [_worker(address) for _ in range(workers)]
    try:
        with Client(address, timeout=seconds, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=seconds)
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """One cluster shared by the tests that only use it (none of them kills a worker)."""
    started = start_cluster()
    try:
        yield started
    finally:
        started.stop()


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
