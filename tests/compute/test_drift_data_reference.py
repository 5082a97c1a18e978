"""``monitoring.reference: data:orders``: a partitioned source's published version as the
drift reference, sketched partition by partition on the real Dask cluster.

``keel drift`` with ``compute.engine: dask`` runs the reference's passes as tasks on the
cluster (the scheduler's log counts them), and its report equals the one the local engine
gives. The window is small (its raw rows are tested) and the reference holds 1,000
values, so KS is exact: scipy's ``ks_2samp`` on the raw columns, read by pandas from the
Parquet files; PSI is computed here with numpy on the reference's deciles.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from keel.monitoring.log import PredictionLog
from keel.project import Project
from tests.compute.conftest import Cluster
from tests.compute.test_drift_cluster import _columns, _same_json
from tests.compute.test_remote_s3_cluster import _finished
from tests.helpers import keel

NOW = 1_790_000_000.0

CONFIG = """\
name: datareference
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
  drift: {{tests: [ks, chi2], bins: 10}}
"""


def _orders(start: int, rows: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(start + int(shift * 1000))
    return pd.DataFrame(
        {
            "order_id": np.arange(start, start + rows),
            "amount": rng.normal(50 + 10 * shift, 10, rows),
            "visits": rng.poisson(3 + shift, rows),
            "plan": rng.choice(["basic", "plus", "pro"], rows, p=[0.5, 0.3, 0.2]),
            "label": rng.choice(["yes", "no"], rows),
        }
    )


@pytest.fixture
def project(tmp_path: Path, cluster: Cluster) -> Path:
    """Three partitions (1,000 orders) ingested as one version, and 800 logged
    predictions of m@1 on shifted inputs."""
    root = tmp_path / "project"
    folder = root / "data" / "orders"
    folder.mkdir(parents=True)
    for name, (start, rows) in zip("abc", ((0, 400), (400, 350), (750, 250)), strict=True):
        _orders(start, rows).to_parquet(folder / f"{name}.parquet", index=False)
    _configure(root, "local", cluster)
    done = keel("ingest", "--source", "orders", "--json", cwd=root)
    assert done.returncode == 0, done.stderr
    window = _orders(5_000, 800, shift=0.4)
    entries = [
        {
            "inputs": {"amount": float(r.amount), "visits": int(r.visits), "plan": r.plan},
            "output": 0.5,
            "model_version": "m@1",
            "time": NOW - 1_000 + i,
        }
        for i, r in enumerate(window.itertuples())
    ]
    with Project.open(root) as opened, PredictionLog.for_project(opened) as log:
        log.append(entries)
        log.flush()
    window.to_parquet(tmp_path / "window.parquet")
    return root


def _configure(root: Path, engine: str, cluster: Cluster) -> None:
    (root / "keel.yaml").write_text(CONFIG.format(engine=engine, address=cluster.address))


def _drift(root: Path, engine: str, cluster: Cluster) -> dict[str, object]:
    """``keel drift --json`` on ``engine``, the reference computed afresh."""
    _configure(root, engine, cluster)
    shutil.rmtree(root / ".keel" / "references", ignore_errors=True)
    done = keel("drift", "--json", cwd=root)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def _psi(reference: np.ndarray, window: np.ndarray) -> float:
    """PSI on the reference's deciles (``np.quantile``; the top edge just past its max),
    with a bucket below and above them and empty buckets' shares floored at 1e-4."""
    edges = np.quantile(reference, np.linspace(0, 1, 11))
    edges[-1] = np.nextafter(reference.max(), np.inf)
    ref = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=12)
    win = np.bincount(np.searchsorted(edges, window, side="right"), minlength=12)
    used = (ref + win) > 0
    expected = np.maximum(ref[used] / ref.sum(), 1e-4)
    actual = np.maximum(win[used] / win.sum(), 1e-4)
    return float(((actual - expected) * np.log(actual / expected)).sum())


def test_a_data_version_reference_is_sketched_on_the_cluster(
    project: Path, cluster: Cluster
) -> None:
    """Each of the three passes ran one task per partition on the cluster; the report is
    the local engine's; KS is scipy's on the raw columns and PSI numpy's on the deciles."""
    before = {name: _finished(cluster, name) for name in ("_scan", "_bracket", "_count")}
    on_dask = _drift(project, "dask", cluster)
    for name, count in before.items():
        assert _finished(cluster, name) - count == 3, name
    local = _drift(project, "local", cluster)
    _same_json(on_dask, local)
    files = sorted((project / "data" / "orders").glob("*.parquet"))
    reference = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    window = pd.read_parquet(project.parent / "window.parquet")
    columns = _columns(on_dask)
    assert on_dask["rows"] == 800 and on_dask["reference_rows"] == 1_000
    exact = stats.ks_2samp(window["amount"], reference["amount"])
    assert columns["amount"]["statistic"] == pytest.approx(exact.statistic, abs=1e-12)
    assert columns["amount"]["p_value"] == pytest.approx(exact.pvalue, rel=1e-9)
    psi = _psi(reference["amount"].to_numpy(), window["amount"].to_numpy())
    assert columns["amount"]["psi"] == pytest.approx(psi, rel=1e-9)
    assert set(columns) == {"amount", "visits", "plan"}  # the features; not the label
    assert columns["amount"]["decision"] == "drift"


def test_engine_option_builds_the_data_reference_on_the_cluster(
    project: Path, cluster: Cluster
) -> None:
    """``keel drift --engine dask`` over ``compute.engine: local`` runs the reference's
    passes on the cluster too, not only the window's."""
    _configure(project, "local", cluster)
    shutil.rmtree(project / ".keel" / "references", ignore_errors=True)
    before = {name: _finished(cluster, name) for name in ("_scan", "_bracket", "_count")}
    done = keel("drift", "--json", "--engine", "dask", cwd=project)
    assert done.returncode == 0, done.stderr
    for name, count in before.items():
        assert _finished(cluster, name) - count == 3, name
