"""Drift of a window split into Parquet partitions, sketched per partition on the real Dask
cluster and merged, equals ``compare_frame`` of the same rows in one frame (read by
pandas): every column's test, statistic, p-value, effect and decision.

Tolerance: 1e-9 relative on the floating numbers. The counts are integers, so the merged
sketch is exact, and the MMD sample is the same rows; only summation order could differ.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from keel.compute.dask import DaskEngine
from keel.data.partitions import Table, plan_partitions
from keel.monitoring.cluster import compare_partitions
from keel.monitoring.drift import compare_frame
from keel.monitoring.reference import Reference
from keel.monitoring.results import DriftReport, DriftSettings
from tests.compute.conftest import Cluster

SETTINGS = DriftSettings(tests=("ks", "chi2", "psi", "mmd"), permutations=50)


def _frame(rows: int, seed: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    plans = rng.choice(["basic", "plus", "pro"], rows, p=[0.5 - shift / 2, 0.3, 0.2 + shift / 2])
    frame = pd.DataFrame(
        {
            "amount": rng.normal(50 + 10 * shift, 10, rows),
            "visits": rng.poisson(3, rows),
            "plan": plans,
        }
    )
    frame.loc[rng.choice(rows, rows // 50, replace=False), "amount"] = np.nan
    return frame


@pytest.fixture(scope="module")
def engine(cluster: Cluster) -> Iterator[DaskEngine]:
    """A client of the test cluster."""
    opened = DaskEngine.connect(cluster.address, 30)
    try:
        yield opened
    finally:
        opened.close()


def _window(folder: Path, sizes: list[int], shift: float) -> tuple[Table, pd.DataFrame]:
    folder.mkdir()
    for i, rows in enumerate(sizes):
        _frame(rows, seed=10 + i, shift=shift).to_parquet(folder / f"part-{i}.parquet")
    files = sorted(folder.glob("*.parquet"))
    whole = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    return Table("parquet", tuple(str(f) for f in files)), whole


def _same(got: DriftReport, expected: DriftReport) -> None:
    assert got.rows == expected.rows
    assert [(c.column, c.test, c.decision, c.rows, c.nulls) for c in got.columns] == [
        (c.column, c.test, c.decision, c.rows, c.nulls) for c in expected.columns
    ]
    for mine, theirs in zip(got.columns, expected.columns, strict=True):
        for field in ("statistic", "p_value", "effect", "p_adjusted"):
            assert getattr(mine, field) == pytest.approx(getattr(theirs, field), rel=1e-9)


def test_a_big_window_merged_from_partition_sketches_equals_the_local_report(
    engine: DaskEngine, tmp_path: Path
) -> None:
    """25,000 shifted rows (past exact_rows: sketches and an MMD sample) in three files cut
    into 8,000-row partitions give the local report, and the shift is found."""
    reference = Reference.from_frame(_frame(4_000, seed=1, shift=0.0), sample=2_000)
    table, whole = _window(tmp_path / "window", [12_000, 9_000, 4_000], shift=0.3)
    partitions = plan_partitions(table, 8_000)
    assert len(partitions) == 5
    got = compare_partitions(engine, reference, partitions, SETTINGS)
    expected = compare_frame(reference, whole, SETTINGS)
    _same(got, expected)
    assert {c.column for c in expected.columns if c.decision == "drift"} >= {"amount", "plan"}


def test_a_small_window_on_the_cluster_takes_the_exact_tests_as_locally(
    engine: DaskEngine, tmp_path: Path
) -> None:
    """A 3,000-row window in two files (under exact_rows: the exact KS test on raw rows)
    gives the local report, with no drift found where none was planted."""
    reference = Reference.from_frame(_frame(4_000, seed=1, shift=0.0), sample=2_000)
    table, whole = _window(tmp_path / "small", [1_800, 1_200], shift=0.0)
    partitions = plan_partitions(table, 1_000)
    got = compare_partitions(engine, reference, partitions, SETTINGS)
    expected = compare_frame(reference, whole, SETTINGS)
    _same(got, expected)
    assert not any(c.decision == "drift" for c in expected.columns)


# -- keel drift and keel monitor over a logged window on the cluster ----------------------

NOW = 1_790_000_000.0  # the logged rows' times are fixed; the window reaches back 3650 days


def _logged_project(root: Path, cluster: Cluster, batches: list[pd.DataFrame]) -> Path:
    """A project whose log holds each batch as one segment (columns amount, visits, plan,
    model_version, time), a reference CSV of 3,000 unshifted rows, and the cluster's
    address with 1,000-row partitions; the engine is picked per command."""
    root.mkdir()
    (root / "keel.yaml").write_text(
        "name: drifting\n"
        f"compute:\n  address: {cluster.address}\n  partition_rows: 1000\n"
        "monitoring:\n  reference: reference.csv\n  window: 3650d\n"
        "  drift: {tests: [ks, chi2, mmd], permutations: 50}\n"
    )
    _frame(3_000, seed=1, shift=0.0).to_csv(root / "reference.csv", index=False)
    from keel.monitoring.log import PredictionLog
    from keel.project import Project

    with Project.open(root) as project, PredictionLog.for_project(project) as log:
        for batch in batches:
            log.append(_entries(batch))
            log.flush()
    return root


def _entries(batch: pd.DataFrame) -> list[dict[str, object]]:
    return [
        {
            "inputs": {
                "amount": None if np.isnan(row.amount) else float(row.amount),
                "visits": int(row.visits),
                "plan": row.plan,
            },
            "output": 0.5,
            "model_version": row.model_version,
            "time": float(row.time),
        }
        for row in batch.itertuples()
    ]


def _batch(rows: int, seed: int, shift: float, version: str, times: np.ndarray) -> pd.DataFrame:
    return _frame(rows, seed, shift).assign(model_version=version, time=times)


def _logged_rows(root: Path) -> pd.DataFrame:
    """Every logged row, read from the segment files by pandas."""
    from keel.monitoring.log import PredictionLog
    from keel.project import Project

    with Project.open(root) as project, PredictionLog.for_project(project) as log:
        files = [log.store.local(segment.location) for segment in log.segments()]
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def _drift_json(root: Path, cluster: Cluster, engine: str) -> dict[str, object]:
    from tests.helpers import keel

    done = keel("drift", "--json", "--reference", "reference.csv", "--engine", engine, cwd=root)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def _columns(report: dict[str, object]) -> dict[str, dict[str, object]]:
    return {str(c["column"]): c for c in report["columns"]}  # type: ignore[attr-defined]


def _same_json(got: dict[str, object], expected: dict[str, object]) -> None:
    assert (got["rows"], got["decision"], got["model_version"]) == (
        expected["rows"],
        expected["decision"],
        expected["model_version"],
    )
    mine, theirs = _columns(got), _columns(expected)
    assert mine.keys() == theirs.keys()
    for name, column in theirs.items():
        assert (mine[name]["test"], mine[name]["decision"]) == (column["test"], column["decision"])
        for field in ("statistic", "p_value", "effect", "p_adjusted"):
            assert mine[name][field] == pytest.approx(column[field], rel=1e-9, abs=1e-12)


def _total_variation(reference: pd.Series, window: pd.Series) -> float:
    ref = reference.value_counts(normalize=True)
    win = window.value_counts(normalize=True)
    both = ref.index.union(win.index)
    return float(
        0.5 * (ref.reindex(both, fill_value=0) - win.reindex(both, fill_value=0)).abs().sum()
    )


@pytest.fixture(scope="module")
def big_log(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """25,000 shifted rows of m@1 in four segments, and 1,200 rows of m@2 in the last."""
    sizes = [9_000, 7_000, 5_000, 4_000]
    starts = np.cumsum([0, *sizes])
    batches = [
        _batch(n, seed=20 + i, shift=0.3, version="m@1", times=NOW - 1e6 + starts[i] + np.arange(n))
        for i, n in enumerate(sizes)
    ]
    other = _batch(1_200, seed=40, shift=0.0, version="m@2", times=NOW - 1e5 + np.arange(1_200))
    batches[-1] = pd.concat([batches[-1], other], ignore_index=True)
    return _logged_project(tmp_path_factory.mktemp("big") / "project", cluster, batches)


def test_keel_drift_on_dask_equals_the_local_engine_on_a_big_logged_window(
    big_log: Path, cluster: Cluster
) -> None:
    """``keel drift --json --engine dask`` over four segments (past exact_rows: segment
    sketches merged and an MMD sample) reports what ``--engine local`` reports, its tasks
    ran on the cluster, and the figures match pandas on the logged rows."""
    from tests.compute.test_features_cluster import _finished

    before = _finished(cluster, "count_segment")
    on_dask = _drift_json(big_log, cluster, "dask")
    assert _finished(cluster, "count_segment") - before == 4
    local = _drift_json(big_log, cluster, "local")
    _same_json(on_dask, local)
    logged = _logged_rows(big_log)
    mine = logged[logged["model_version"] == "m@1"]
    reference = pd.read_csv(big_log / "reference.csv")
    assert on_dask["rows"] == len(mine) == 25_000
    assert on_dask["other_versions"] == {"m@2": 1_200}
    columns = _columns(on_dask)
    assert columns["plan"]["effect"] == pytest.approx(
        _total_variation(reference["plan"], mine["input.plan"]), abs=1e-12
    )
    # binned KS never exceeds scipy's distance on the raw rows, and 100 bins come close
    exact = stats.ks_2samp(mine["input.amount"].dropna(), reference["amount"].dropna()).statistic
    assert exact - 0.02 <= float(columns["amount"]["statistic"]) <= exact + 1e-12  # type: ignore[arg-type]
    assert columns["amount"]["decision"] == "drift" and columns["plan"]["decision"] == "drift"


def test_keel_monitor_once_on_dask_judges_the_window_as_the_local_engine(
    big_log: Path, cluster: Cluster
) -> None:
    """``keel monitor --once --json`` (the worker's cycle) on ``compute.engine: dask`` runs
    the segment tasks on the cluster and finds the local cycle's drift."""
    from tests.compute.test_features_cluster import _finished
    from tests.helpers import keel

    config = big_log / "keel.yaml"
    text = config.read_text()
    found = {}
    for engine in ("dask", "local"):
        config.write_text(text.replace("compute:\n", f"compute:\n  engine: {engine}\n"))
        before = _finished(cluster, "count_segment")
        done = keel("monitor", "--once", "--json", cwd=big_log)
        assert done.returncode == 0, done.stderr
        found[engine] = json.loads(done.stdout)["drift"]
        assert _finished(cluster, "count_segment") - before == (4 if engine == "dask" else 0)
    config.write_text(text)
    assert found["dask"]["rows"] == 25_000
    assert found["dask"] == found["local"]


def test_a_small_logged_window_on_dask_takes_scipys_exact_ks(
    cluster: Cluster, tmp_path: Path
) -> None:
    """6,000 rows in three segments (under exact_rows: the raw rows come back from the
    cluster): the KS distance is scipy's on the logged rows, as on the local engine."""
    sizes = [2_500, 2_000, 1_500]
    starts = np.cumsum([0, *sizes])
    batches = [
        _batch(n, seed=50 + i, shift=0.1, version="m@1", times=NOW - 1e6 + starts[i] + np.arange(n))
        for i, n in enumerate(sizes)
    ]
    root = _logged_project(tmp_path / "project", cluster, batches)
    on_dask = _drift_json(root, cluster, "dask")
    _same_json(on_dask, _drift_json(root, cluster, "local"))
    logged = _logged_rows(root)
    reference = pd.read_csv(root / "reference.csv")
    exact = stats.ks_2samp(logged["input.amount"].dropna(), reference["amount"].dropna())
    assert on_dask["rows"] == len(logged) == 6_000
    assert _columns(on_dask)["amount"]["statistic"] == pytest.approx(exact.statistic, abs=1e-12)


def test_interleaved_segments_on_dask_draw_the_local_mmd_sample(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Two replicas' segments whose times interleave row by row (22,000 rows, past
    exact_rows): the MMD sample is drawn in the log's time order, so the MMD statistic
    and p-value equal the local engine's, as every other column's."""
    times = NOW - 1e6 + np.arange(22_000, dtype=float)
    batches = [
        _batch(11_000, seed=60, shift=0.0, version="m@1", times=times[0::2]),
        _batch(11_000, seed=61, shift=0.4, version="m@1", times=times[1::2]),
    ]
    root = _logged_project(tmp_path / "project", cluster, batches)
    on_dask = _drift_json(root, cluster, "dask")
    local = _drift_json(root, cluster, "local")
    _same_json(on_dask, local)
    assert "mmd" in {c["test"] for c in _columns(on_dask).values()}
    assert on_dask["rows"] == len(_logged_rows(root)) == 22_000


def test_a_window_cut_inside_a_segment_reads_only_its_rows_on_dask(
    big_log: Path, cluster: Cluster
) -> None:
    """A window whose start falls inside the second segment: the first segment is not
    read (three tasks), the second only from the cut on, and the report is the local
    engine's on the rows pandas finds at or after the cut."""
    from datetime import UTC, datetime, timedelta

    from keel.monitoring.log import PredictionLog
    from keel.monitoring.wiring import WindowChoice, load_reference, run_drift
    from keel.project import Project
    from keel.schema import ComputeConfig
    from tests.compute.test_features_cluster import _finished

    cut = NOW - 1e6 + 12_000.5
    choice = WindowChoice(duration=timedelta(seconds=NOW - cut))
    now = datetime.fromtimestamp(NOW, UTC)
    dask = ComputeConfig(engine="dask", address=cluster.address, partition_rows=1_000)
    before = _finished(cluster, "count_segment")
    with Project.open(big_log) as project, PredictionLog.for_project(project) as log:
        reference = load_reference(big_log / "reference.csv")
        got = run_drift(log, reference, choice, SETTINGS, now, dask)
        expected = run_drift(log, reference, choice, SETTINGS, now)
    assert _finished(cluster, "count_segment") - before == 3
    _same(got, expected)
    logged = _logged_rows(big_log)
    seconds = (logged["time"] - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    inside = logged[(seconds >= cut) & (logged["model_version"] == "m@1")]
    assert got.rows == len(inside) == 12_999
    assert got.other_versions == {"m@2": 1_200}


# -- what the command shows, and Ctrl-C ---------------------------------------------------


def test_keel_drift_on_dask_shows_segments_done_on_a_terminal(
    big_log: Path, cluster: Cluster
) -> None:
    """On a terminal (rich told so by TTY_COMPATIBLE/TTY_INTERACTIVE) the status line of
    ``keel drift --engine dask`` counts the window's segments done out of its four."""
    import re

    from tests.helpers import keel

    terminal = {"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1"}
    done = keel("drift", "--reference", "reference.csv", "--engine", "dask", cwd=big_log,
                env=terminal)  # fmt: skip
    assert done.returncode == 0, done.stderr
    shown = re.findall(r"drift: (\d+)/(\d+) segments done", done.stderr)
    assert shown and {int(total) for _, total in shown} == {4}
    assert all(0 <= int(n) <= 4 for n, _ in shown)


@pytest.fixture
def slow_cluster() -> Iterator[Cluster]:
    """A scheduler and two workers whose count of a window's first segment sleeps 30 s."""
    import subprocess

    from tests.compute.conftest import DASK, _environment
    from tests.helpers import die_with_parent, free_port

    port = free_port()
    quiet = subprocess.DEVNULL
    scheduler = subprocess.Popen(
        [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        stdout=quiet, stderr=quiet, env=_environment(), preexec_fn=die_with_parent,
    )  # fmt: skip
    started = Cluster(f"tcp://127.0.0.1:{port}", scheduler)
    worker = [str(DASK), "worker", started.address, "--nthreads", "1", "--no-nanny"]
    slow = ["--no-dashboard", "--preload", "tests.compute.slow_drift", "--host", "127.0.0.1"]
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

        with Client(started.address, timeout=90, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=90)
        yield started
    finally:
        started.stop(deadline=5)  # a worker still asleep in the cancelled task is killed


def test_ctrl_c_cancels_the_drift_tasks_on_the_cluster(
    slow_cluster: Cluster, tmp_path: Path
) -> None:
    """SIGINT while the first segment's count sleeps and the other three are done: exit
    130 with one line, no report on stdout, and the scheduler holds no task of the check
    afterwards."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.compute.conftest import REPO
    from tests.compute.test_features_cluster import _tasks

    sizes = [1_500] * 4
    batches = [
        _batch(n, seed=70 + i, shift=0.2, version="m@1", times=NOW - 1e6 + i * 1e4 + np.arange(n))
        for i, n in enumerate(sizes)
    ]
    root = _logged_project(tmp_path / "project", slow_cluster, batches)
    process = subprocess.Popen(
        [sys.executable, "-m", "keel", "drift", "--json", "--reference", "reference.csv",
         "--engine", "dask"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        counting = {k: v for k, v in _tasks(slow_cluster.address).items() if "count_segment" in k}
        late = [k for k, v in counting.items() if k.endswith("-0") and v == "processing"]
        others = [v for k, v in counting.items() if not k.endswith("-0")]
        if late and all(v == "memory" for v in others):
            break
        time.sleep(0.2)
    else:
        pytest.fail("the first segment's count was never the only one left running")
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1].startswith("cancelled:")
    assert stdout == ""
    deadline = time.monotonic() + 30
    while _tasks(slow_cluster.address) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _tasks(slow_cluster.address) == {}
