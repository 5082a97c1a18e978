"""Drift of a prediction log shipped to S3, judged on Dask workers that see nothing of this
machine but the S3 server.

Replicas ship their sealed spool files to the project's S3 artifact store
(``serving.log_roll: ship``); the worker's flush rolls them into segments there. The two
Dask workers run as in ``test_remote_s3_cluster``: their own mount namespace with an empty
tmpfs over ``/tmp`` (where the project, its log folder and the client's segment cache
live), no AWS variable, S3 reached through keel.yaml's ``storage:`` only. A task that read
a segment by a path of the client would find no file. ``keel drift --engine dask`` must
report what ``--engine local`` reports; expected figures come from pandas and scipy on the
segments read straight from S3.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from keel.data.remote import CACHE_BYTES_ENV
from keel.monitoring.log import PredictionLog
from keel.monitoring.shipping import SpoolDrop, SpoolShipper
from keel.project import Project
from tests.compute.conftest import Cluster
from tests.compute.test_drift_cluster import (
    NOW,
    _batch,
    _columns,
    _entries,
    _frame,
    _same_json,
    _total_variation,
)
from tests.compute.test_remote_s3_cluster import (
    STORAGE,
    _downloads,
    _finished,
    counted,  # noqa: F401 (a fixture)
    isolated_cluster,
)
from tests.helpers import keel
from tests.s3server import S3Server

PROJECT = """\
name: shippedlog
artifacts: s3://{bucket}/keel
compute:
  address: {address}
  partition_rows: 1000
monitoring:
  reference: reference.csv
  window: 3650d
  drift: {{tests: [ks, chi2, mmd], permutations: 50}}
"""


@pytest.fixture(scope="module")
def isolated() -> Iterator[Cluster]:
    """A scheduler and two workers that see neither this machine's /tmp nor any AWS
    setting (``test_remote_s3_cluster``'s workers), their blob cache turned off: every
    fetch of a segment is a request to S3."""
    with contextlib.ExitStack() as stack:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv(CACHE_BYTES_ENV, "0")
            cluster = stack.enter_context(isolated_cluster())
        yield cluster


def _ship(project: Project, replica: Path, batches: list[pd.DataFrame]) -> None:
    """A replica logs each batch into a spool file of its own and ships the sealed files
    to the S3 artifact store; none is rolled here."""
    for batch in batches:
        log = PredictionLog(replica, sync=False, shipped=None)
        log.append(_entries(batch))
        log.close(flush=False)
    result = SpoolShipper(replica / "spool", SpoolDrop.for_artifacts(project.artifacts)).ship()
    assert (result.shipped, result.pending) == (len(batches), 0)


@pytest.fixture
def shipped(
    tmp_path: Path,
    s3_server: S3Server,
    s3_bucket: str,
    isolated: Cluster,
    bare_environment: None,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """A project whose artifacts are on S3, and whose log is 25,000 shifted rows of m@1
    and 1,200 rows of m@2, shipped by a replica in four spool files and rolled by the
    worker's flush into four segments in S3."""
    monkeypatch.setenv("KEEL_TEST_S3_KEY", s3_server.credentials["key"])
    monkeypatch.setenv("KEEL_TEST_S3_SECRET", s3_server.credentials["secret"])
    root = tmp_path / "project"
    root.mkdir()
    config = PROJECT.format(bucket=s3_bucket, address=isolated.address)
    (root / "keel.yaml").write_text(config + STORAGE.format(url=s3_server.url))
    _frame(3_000, seed=1, shift=0.0).to_csv(root / "reference.csv", index=False)
    sizes = [9_000, 7_000, 5_000, 4_000]
    starts = np.cumsum([0, *sizes])
    batches = [
        _batch(n, seed=20 + i, shift=0.3, version="m@1", times=NOW - 1e6 + starts[i] + np.arange(n))
        for i, n in enumerate(sizes)
    ]
    other = _batch(1_200, seed=40, shift=0.0, version="m@2", times=NOW - 1e5 + np.arange(1_200))
    batches[-1] = pd.concat([batches[-1], other], ignore_index=True)
    with Project.open(root) as project:
        _ship(project, tmp_path / "replica", batches)
        with PredictionLog.for_project(project) as log:
            rolled = log.flush()
    assert (rolled.segments, rolled.rows) == (4, 26_200)
    return root


def _logged_rows(root: Path, s3_server: S3Server) -> pd.DataFrame:
    """Every logged row, read by pandas from the segment objects in S3 (the commit markers
    name their digests)."""
    with Project.open(root) as project, PredictionLog.for_project(project) as log:
        digests = [s.location.removeprefix("sha256:") for s in log.segments()]
        location = project.artifacts.location.removeprefix("s3://")
    fs = s3_server.filesystem()
    frames = [
        pd.read_parquet(io.BytesIO(fs.cat(f"{location}/sha256/{d[:2]}/{d}"))) for d in digests
    ]
    return pd.concat(frames, ignore_index=True)


def _drift(root: Path, engine: str) -> dict[str, object]:
    done = keel("drift", "--json", "--reference", "reference.csv", "--engine", engine, cwd=root)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_a_window_shipped_to_s3_is_judged_on_workers_that_see_only_s3(
    shipped: Path, isolated: Cluster, s3_server: S3Server
) -> None:
    """``keel drift --engine dask`` on the shipped window: one counting task per segment
    ran on the isolated workers, the client fetched no segment, and the report is the
    local engine's; rows, the plan's effect and the KS bound match pandas and scipy."""
    cache = shipped / ".keel" / "predictions" / "cache"
    before = _finished(isolated, "count_segment")
    on_dask = _drift(shipped, "dask")
    assert _finished(isolated, "count_segment") - before == 4
    assert not cache.exists() or not any(cache.iterdir())
    local = _drift(shipped, "local")
    _same_json(on_dask, local)
    logged = _logged_rows(shipped, s3_server)
    mine = logged[logged["model_version"] == "m@1"]
    reference = pd.read_csv(shipped / "reference.csv")
    assert on_dask["rows"] == len(mine) == 25_000
    assert on_dask["other_versions"] == {"m@2": 1_200}
    columns = _columns(on_dask)
    assert columns["plan"]["effect"] == pytest.approx(
        _total_variation(reference["plan"], mine["input.plan"]), abs=1e-12
    )
    exact = stats.ks_2samp(mine["input.amount"].dropna(), reference["amount"].dropna()).statistic
    assert exact - 0.02 <= float(columns["amount"]["statistic"]) <= exact + 1e-12  # type: ignore[arg-type]
    assert columns["amount"]["decision"] == "drift" and columns["plan"]["decision"] == "drift"


def test_a_small_shipped_window_returns_its_raw_rows_from_the_workers(
    shipped: Path, isolated: Cluster, s3_server: S3Server
) -> None:
    """``--model-version m@2`` (1,200 rows, under exact_rows): the workers send back the
    raw rows of m@2 they read from S3, and the KS distance is scipy's on those rows."""
    runs = {}
    for engine in ("dask", "local"):
        done = keel(
            "drift", "--json", "--reference", "reference.csv", "--model-version", "m@2",
            "--engine", engine, cwd=shipped,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        runs[engine] = json.loads(done.stdout)
    _same_json(runs["dask"], runs["local"])
    logged = _logged_rows(shipped, s3_server)
    mine = logged[logged["model_version"] == "m@2"]
    reference = pd.read_csv(shipped / "reference.csv")
    exact = stats.ks_2samp(mine["input.amount"].dropna(), reference["amount"].dropna())
    assert runs["dask"]["rows"] == len(mine) == 1_200
    assert _columns(runs["dask"])["amount"]["statistic"] == pytest.approx(
        exact.statistic, abs=1e-12
    )


def test_each_segment_is_fetched_from_s3_once_per_drift_run(
    shipped: Path,
    s3_server: S3Server,
    counted: tuple[str, list[tuple[str, str]]],  # noqa: F811 (the fixture imported above)
) -> None:
    """Through a proxy in front of S3 that counts requests: ``keel drift --engine dask``
    makes three passes over the four segments (their columns, their counts, the MMD
    sample's rows), on workers without a blob cache, yet GETs each segment once; the
    local engine does too, and both report the same."""
    url, seen = counted
    config = shipped / "keel.yaml"
    config.write_text(config.read_text().replace(s3_server.url, url))
    with Project.open(shipped) as project, PredictionLog.for_project(project) as log:
        digests = [s.location.removeprefix("sha256:") for s in log.segments()]
    seen.clear()
    on_dask = _drift(shipped, "dask")
    assert _downloads(seen, digests) == [1, 1, 1, 1], seen
    seen.clear()
    local = _drift(shipped, "local")
    assert _downloads(seen, digests) == [1, 1, 1, 1], seen
    _same_json(on_dask, local)


DATA_PROJECT = """\
name: s3reference
artifacts: s3://{bucket}/keel
sources:
  orders:
    kind: parquet
    path: data/orders/
    partitioned: true
    key: order_id
training:
  target: label
  exclude: [order_id]
compute:
  engine: {engine}
  address: {address}
monitoring:
  reference: data:orders
  window: 3650d
"""


def test_a_data_reference_in_s3_is_fetched_once_and_never_by_the_client(
    tmp_path: Path,
    s3_server: S3Server,
    s3_bucket: str,
    isolated: Cluster,
    bare_environment: None,
    monkeypatch: pytest.MonkeyPatch,
    counted: tuple[str, list[tuple[str, str]]],  # noqa: F811 (the fixture imported above)
) -> None:
    """``monitoring.reference: data:orders`` of a partitioned source published into S3:
    the three passes over its three partitions run on workers that see only S3, and the
    proxy in front of S3 passes one GET of each partition (the task that holds its bytes
    for the passes), so neither a second pass nor the client fetched one. The local
    engine fetches each once too (into a temporary file for its passes), and reports the
    same."""
    monkeypatch.setenv("KEEL_TEST_S3_KEY", s3_server.credentials["key"])
    monkeypatch.setenv("KEEL_TEST_S3_SECRET", s3_server.credentials["secret"])
    url, seen = counted
    root = tmp_path / "project"
    folder = root / "data" / "orders"
    folder.mkdir(parents=True)
    for i, rows in enumerate([700, 500, 300]):
        part = _frame(rows, seed=60 + i, shift=0.0).assign(label="no")
        part.insert(0, "order_id", np.arange(rows) + 1_000 * i)
        part.to_parquet(folder / f"{i}.parquet", index=False)

    def configure(engine: str) -> None:
        config = DATA_PROJECT.format(bucket=s3_bucket, engine=engine, address=isolated.address)
        (root / "keel.yaml").write_text(config + STORAGE.format(url=url))

    configure("local")
    assert keel("ingest", "--source", "orders", cwd=root).returncode == 0
    with Project.open(root) as project:
        from keel.data.access import version_digests
        from keel.data.catalog import Catalog

        version = Catalog(project.store).latest("orders")
        assert version is not None
        digests = version_digests(project.artifacts, version)
        with PredictionLog.for_project(project) as log:
            log.append(_entries(_batch(900, 70, 0.3, "m@1", NOW - 1e4 + np.arange(900))))
            log.flush()
    runs = {}
    for engine in ("dask", "local"):
        configure(engine)
        shutil.rmtree(root / ".keel" / "references", ignore_errors=True)
        before = _finished(isolated, "_count")
        seen.clear()
        done = keel("drift", "--json", cwd=root)
        assert done.returncode == 0, done.stderr
        runs[engine] = json.loads(done.stdout)
        assert _finished(isolated, "_count") - before == (3 if engine == "dask" else 0)
        assert _downloads(seen, digests) == [1, 1, 1], seen
    _same_json(runs["dask"], runs["local"])
    assert runs["dask"]["reference_rows"] == 1_500
