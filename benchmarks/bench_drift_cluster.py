"""Drift of a big logged window (``keel drift``, the monitoring cycle) on the local engine
and on a Dask cluster (``compute.engine: dask``): the window is ``--segments`` log segments
of ``--rows`` rows each (three numeric inputs and one category, shifted), judged against a
20,000-row reference with the KS, chi-square and MMD tests, so the raw rows are needed
(the MMD sample): no stored sketch answers it.

Run from the repository root with the project's virtualenv active:

    python benchmarks/bench_drift_cluster.py [--segments 10] [--rows 50000] [--workers 2]
        [--runs 3]

The local engine reads the window in one DuckDB query and judges the frame; the Dask side
reads one segment per task and merges the sketches. The cluster (``--workers`` processes,
one thread each) starts and runs the job once outside the timings (both engines run once
first). Medians of ``--runs``; the reports are checked equal. No target: the issue asks
for the same result; this says what the cluster costs or saves on one machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _frame(rows: int, seed: int, shift: float) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "amount": rng.normal(50 + 10 * shift, 10, rows),
            "visits": rng.poisson(3, rows).astype(float),
            "tenure": rng.exponential(20 + shift, rows),
            "plan": rng.choice(
                ["basic", "plus", "pro"], rows, p=[0.5 - shift / 2, 0.3, 0.2 + shift / 2]
            ),
        }
    )


def _build(root: Path, segments: int, rows: int) -> None:
    from keel.monitoring.log import PredictionLog
    from keel.project import Project

    root.mkdir()
    (root / "keel.yaml").write_text("name: drifting\n")
    _frame(20_000, seed=1, shift=0.0).to_csv(root / "reference.csv", index=False)
    with Project.open(root) as project, PredictionLog.for_project(project) as log:
        for i in range(segments):
            batch = _frame(rows, seed=10 + i, shift=0.2)
            log.append(
                {"inputs": row, "output": 0.5, "model_version": "m@1"}
                for row in batch.to_dict("records")
            )
            log.flush()


def _timed(root: Path, compute: Any, runs: int) -> tuple[float, Any]:
    from keel.monitoring.log import PredictionLog
    from keel.monitoring.results import DriftSettings
    from keel.monitoring.wiring import WindowChoice, load_reference, run_drift
    from keel.project import Project

    settings = DriftSettings(tests=("ks", "chi2", "mmd"))
    times, report = [], None
    with Project.open(root) as project, PredictionLog.for_project(project) as log:
        reference = load_reference(root / "reference.csv")
        run_drift(log, reference, WindowChoice(), settings, compute=compute)  # warm the workers
        for _ in range(runs):
            started = time.perf_counter()
            report = run_drift(log, reference, WindowChoice(), settings, compute=compute)
            times.append(time.perf_counter() - started)
    return statistics.median(times), report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=10)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, SRC)
    from keel.compute.dask import DaskEngine
    from keel.schema import ComputeConfig

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "project"
        _build(root, args.segments, args.rows)
        local, expected = _timed(root, ComputeConfig(), args.runs)
        cluster = DaskEngine.connect(None, 30, workers=args.workers)  # started off the clock
        try:
            dask = ComputeConfig(engine="dask", address=cluster.address, partition_rows=1_000)
            remote, got = _timed(root, dask, args.runs)
        finally:
            cluster.close()
    assert got is not None and expected is not None
    assert got.to_dict() == expected.to_dict(), "the engines disagree"
    total = args.segments * args.rows
    print(f"{total:,} logged rows in {args.segments} segments; the same report on both engines")
    print(f"{'engine':<24} {'median s':>9} {'vs local':>9}")
    print(f"{'local (one DuckDB read)':<24} {local:>9.2f} {1.0:>9.2f}")
    print(f"{f'dask, {args.workers} workers':<24} {remote:>9.2f} {remote / local:>9.2f}")


if __name__ == "__main__":
    main()
