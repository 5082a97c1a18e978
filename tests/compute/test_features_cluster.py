"""Feature snapshots, training sets and materialization on the real Dask cluster equal the
local engine's on the same data, row for row.

Two copies of the flights project (weather by airport with a 6 h maximum age, a daily
trailing delay by carrier, fares by airport and carrier, gates by an integer id), each
with a second weather file that ties ten observations at the same airport and time (the
row ingested last must win). One copy computes in this process; the other has
``compute: {engine: dask}`` with the test cluster's address and 100-row partitions, so its
labels and entities are split over several partitions on two workers.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from keel.features import FeatureStore
from keel.project import Project
from tests.compute.conftest import REPO, Cluster, assert_materialized_alike
from tests.features.flights import START, build_flights

VIEWS = ["weather", "carrier_delays", "fares"]  # the labels have no gate_id
AT = (START + pd.Timedelta(days=6, hours=3)).to_pydatetime()


def _build(root: Path, compute: str = "") -> pd.DataFrame:
    sources, labels = build_flights(root)
    config = root / "keel.yaml"
    config.write_text(config.read_text().replace("data/weather.csv", "data/weather*.csv") + compute)
    ties = sources["weather"].iloc[:10].assign(temp=lambda f: f["temp"] + 100, wind=99)
    ties.to_csv(root / "data" / "weather-2.csv", index=False)
    from tests.features.conftest import ingest

    ingest(root)
    return labels


@pytest.fixture(scope="module")
def projects(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path, pd.DataFrame]:
    """(the local project, the cluster project, the labels)."""
    base = tmp_path_factory.mktemp("features-cluster")
    labels = _build(base / "local")
    compute = f"compute:\n  engine: dask\n  address: {cluster.address}\n  partition_rows: 100\n"
    _build(base / "cluster", compute)
    return base / "local", base / "cluster", labels


def _training_set(root: Path, labels: pd.DataFrame) -> pd.DataFrame:
    with Project.open(root) as project:
        opened = FeatureStore.open(project)
        store = FeatureStore(project, opened.features.select(VIEWS), opened.online)
        try:
            return store.training_set(labels, "dep_time").frame
        finally:
            store.close()


def _ran_on(cluster: Cluster, name: str) -> bool:
    """Whether a task of the function ``name`` has finished on the cluster."""
    return _finished(cluster, name) > 0


def _finished(cluster: Cluster, name: str) -> int:
    """How many tasks of the function ``name`` have finished on the cluster (the
    scheduler's transition log names Keel's tasks ``keel-<function>-...``)."""
    from distributed import Client

    def finished(dask_scheduler: object) -> list[str]:
        log = getattr(dask_scheduler, "transition_log", ())
        return [str(entry[0]) for entry in log if entry[2] == "memory"]

    with Client(cluster.address, timeout=30, set_as_default=False) as client:
        keys = client.run_on_scheduler(finished)
    return sum(f"keel-{name}-" in key for key in keys)


def test_a_training_set_on_the_cluster_equals_the_local_one(
    projects: tuple[Path, Path, pd.DataFrame], cluster: Cluster
) -> None:
    """Every label row, in order, with the same values, nulls, dtypes and ``__missing``
    flags as the local engine; ties, null keys, stale and unknown entities included."""
    local_root, cluster_root, labels = projects
    local = _training_set(local_root, labels)
    remote = _training_set(cluster_root, labels)
    assert _ran_on(cluster, "snapshot_partition") and _ran_on(cluster, "_join_item")
    pd.testing.assert_frame_equal(remote, local)
    # the data exercises what the join must get right
    assert (remote.loc[:9, "temp"] > 100).all()  # the tied rows ingested last win
    assert remote["weather__missing"].sum() > 20  # null keys, SFO, older than 6 h
    assert remote["fares__missing"].sum() >= 15  # null origin or carrier
    assert remote["delay_2d"].notna().sum() > 300


def test_snapshots_on_the_cluster_hold_the_local_rows(
    projects: tuple[Path, Path, pd.DataFrame],
) -> None:
    """Each view's stored snapshot (attribute, aggregate, composite and integer keys) read
    back by pandas has the local snapshot's rows in the same order."""
    frames = []
    for root in projects[:2]:
        with Project.open(root) as project:
            store = FeatureStore.open(project)
            try:
                snaps = [store.offline.snapshot(v, AT) for v in store.features.views.values()]
                frames.append(
                    [pd.read_parquet(project.artifacts.local_path(s.artifact)) for s in snaps]
                )
            finally:
                store.close()
    local, remote = frames
    assert len(local) == 4
    for got, expected in zip(remote, local, strict=True):
        assert len(expected) > 0
        pd.testing.assert_frame_equal(got, expected)


def test_materializing_on_the_cluster_writes_the_local_online_rows(
    projects: tuple[Path, Path, pd.DataFrame],
) -> None:
    """``materialize`` on the cluster project writes the same entities, times and values
    to its online store as the local project writes to its own."""
    assert_materialized_alike(projects[0], projects[1], AT)


def test_keel_features_build_training_set_runs_on_the_cluster(
    projects: tuple[Path, Path, pd.DataFrame],
    cluster: Cluster,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The command (called in this process, to spare CI a second interpreter) on the
    cluster project, with every view (the integer-keyed gates too), runs its joins on the
    cluster and writes the frame the local engine builds from the same label file."""
    from keel.cli.features import build_training_set
    from keel.features.io import read_table

    local_root, cluster_root, labels = projects
    path = tmp_path / "labels.parquet"
    labels = labels.assign(gate_id=[1, 2, 3, None] * (len(labels) // 4))
    labels.to_parquet(path)
    before = _finished(cluster, "_join_item")
    out = tmp_path / "set.parquet"
    capsys.readouterr()
    build_training_set(path, out, "dep_time", None, cluster_root, as_json=True)
    assert json.loads(capsys.readouterr().out)["rows"] == len(labels)
    assert _finished(cluster, "_join_item") > before
    with Project.open(local_root) as project:
        store = FeatureStore.open(project)
        try:
            expected = store.training_set(read_table(path), "dep_time").frame
        finally:
            store.close()
    pd.testing.assert_frame_equal(pd.read_parquet(out), expected, check_dtype=False)
    # gates 1 and 2 exist from START on; id 3, a null id and earlier labels find none
    found = labels["gate_id"].isin([1, 2]) & (labels["dep_time"] >= START)
    assert expected["gates__missing"].tolist() == (~found).tolist()


# -- progress and Ctrl-C ---------------------------------------------------------------


def test_a_build_on_the_cluster_reports_every_partition_done(
    projects: tuple[Path, Path, pd.DataFrame], cluster: Cluster
) -> None:
    """Through ``Reporting`` (what the commands show), each job of a training set counts
    0 to its partitions one by one: every snapshot in ceil(source rows / 100) partitions
    (at least one per worker), then the join in one task per non-empty label partition."""
    from keel.compute.dask import DaskEngine
    from keel.features.cluster import Reporting

    _, cluster_root, labels = projects
    seen: list[tuple[str, int, int]] = []
    with Project.open(cluster_root) as project:
        opened = FeatureStore.open(project)
        store = FeatureStore(project, opened.features.select(VIEWS), opened.online)
        engine = Reporting(DaskEngine.connect(cluster.address, 30), lambda *a: seen.append(a))
        store.offline.engine = engine
        later = labels.assign(dep_time=labels["dep_time"] + pd.Timedelta(days=3))
        try:  # a later point in time: no snapshot cached, every view is computed
            store.training_set(later, "dep_time")
        finally:
            engine.close()
            store.close()
    jobs = list(dict.fromkeys(what for what, _, _ in seen))
    assert jobs == [f"{view} snapshot" for view in VIEWS] + ["training set join"]
    data = cluster_root / "data"
    for what in jobs:
        steps = [(done, total) for name, done, total in seen if name == what]
        total = steps[0][1]
        assert steps == [(done, total) for done in range(total + 1)]
        if what == "weather snapshot":
            rows = sum(len(pd.read_csv(f)) for f in data.glob("weather*.csv"))
            assert total == max(2, -(-rows // 100))


@pytest.fixture
def slow_cluster() -> Iterator[Cluster]:
    """A scheduler and two workers whose snapshot partition 0 sleeps 30 s first."""
    from tests.compute.conftest import DASK, _environment
    from tests.helpers import die_with_parent, free_port

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    quiet = subprocess.DEVNULL
    scheduler = subprocess.Popen(
        [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        stdout=quiet, stderr=quiet, env=_environment(), preexec_fn=die_with_parent,
    )  # fmt: skip
    started = Cluster(address, scheduler)
    worker = [str(DASK), "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard"]
    slow = ["--preload", "tests.compute.slow_features", "--host", "127.0.0.1"]
    for _ in range(2):
        started.workers.append(
            subprocess.Popen(
                [*worker, *slow],
                stdout=quiet,
                stderr=quiet,
                env=_environment(),
                preexec_fn=die_with_parent,
            )
        )
    try:
        from distributed import Client

        with Client(address, timeout=90, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=90)
        yield started
    finally:
        started.stop(deadline=5)  # a worker still asleep in the cancelled task is killed


def _tasks(address: str) -> dict[str, str]:
    """Every task the scheduler holds, by key, with its state."""
    from distributed import Client

    def states(dask_scheduler: Any) -> dict[str, str]:
        return {str(key): task.state for key, task in dask_scheduler.tasks.items()}

    with Client(address, timeout=30, set_as_default=False) as client:
        return dict(client.run_on_scheduler(states))


def _recorded(root: Path) -> tuple[int, int]:
    """Snapshots and materializations in the project's SQLite store, counted by sqlite3
    (a table not created yet holds none)."""
    counts = []
    with closing(sqlite3.connect(root / ".keel" / "keel.db")) as db:
        for table in ("feature_snapshots", "feature_materializations"):
            known = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
            exists = db.execute(known, [table]).fetchone()[0]
            counts.append(
                db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] if exists else 0
            )
    return counts[0], counts[1]


@pytest.mark.parametrize(
    "command",
    [
        ["materialize"],
        [
            "build-training-set",
            "--labels",
            "labels.parquet",
            "--out",
            "set.parquet",
            "--timestamp",
            "dep_time",
        ],
    ],
    ids=["materialize", "build-training-set"],
)
def test_ctrl_c_cancels_the_cluster_build_and_records_nothing(
    command: list[str], slow_cluster: Cluster, tmp_path: Path
) -> None:
    """SIGINT while snapshot partition 0 sleeps and the others are done: exit 130 with
    one line, no snapshot or materialization recorded, no output, and the scheduler
    holds no task of the build afterwards."""
    root = tmp_path / "project"
    root.mkdir()
    compute = (
        f"compute:\n  engine: dask\n  address: {slow_cluster.address}\n  partition_rows: 100\n"
    )
    labels = _build(root, compute)
    labels.assign(gate_id=1).to_parquet(root / "labels.parquet")
    before = _recorded(root)
    process = subprocess.Popen(
        [sys.executable, "-m", "keel", "features", *command, "--json"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        states = _tasks(slow_cluster.address)
        snapshot = {k: v for k, v in states.items() if "keel-snapshot_partition-" in k}
        late = [k for k, v in snapshot.items() if k.endswith("-0") and v == "processing"]
        if late and list(snapshot.values()).count("memory") == len(snapshot) - 1:
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1].startswith("cancelled:")
    assert _recorded(root) == before
    assert not (root / "set.parquet").exists()
    deadline = time.monotonic() + 30
    while _tasks(slow_cluster.address) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _tasks(slow_cluster.address) == {}


def test_keel_features_materialize_shows_partitions_done_on_a_terminal(
    projects: tuple[Path, Path, pd.DataFrame],
) -> None:
    """On a terminal (rich told so by TTY_COMPATIBLE/TTY_INTERACTIVE) the command's status
    line counts the weather snapshot's partitions out of ceil(310 rows / 100) = 4."""
    _, cluster_root, _ = projects
    rows = sum(len(pd.read_csv(f)) for f in (cluster_root / "data").glob("weather*.csv"))
    done = subprocess.run(
        [sys.executable, "-m", "keel", "features", "materialize"],
        cwd=cluster_root,
        env={
            **os.environ,
            "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}",
            "TTY_COMPATIBLE": "1",
            "TTY_INTERACTIVE": "1",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    shown = re.findall(r"weather snapshot: (\d+)/(\d+) partitions done", done.stderr)
    assert shown and {int(total) for _, total in shown} == {-(-rows // 100)}
