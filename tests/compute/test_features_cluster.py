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
from pathlib import Path

import pandas as pd
import pytest

from keel.features import FeatureStore
from keel.project import Project
from tests.compute.conftest import Cluster
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
    found = []
    for root in projects[:2]:
        with Project.open(root) as project:
            store = FeatureStore.open(project)
            try:
                done = store.materialize(AT)
                keys = [
                    (snapshot.view, entity)
                    for snapshot in (
                        store.offline.snapshot(v, AT) for v in store.features.views.values()
                    )
                    for entity, _, _ in store.offline.latest_rows(snapshot, None)
                ]
                rows = store.online.read(keys)
                found.append(({(m.view, m.written) for m in done}, rows))
            finally:
                store.close()
    (local_done, local_rows), (remote_done, remote_rows) = found
    assert remote_done == local_done
    assert len(local_rows) > 10
    assert {k: (r.feature_ts, r.values) for k, r in remote_rows.items()} == {
        k: (r.feature_ts, r.values) for k, r in local_rows.items()
    }


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
