"""Point-in-time training sets on the local engine and on a Dask cluster (``compute.engine:
dask``), on the flights-shaped project of ``_flights.py``: snapshots of the three views
(cold) and the join of the labels, each engine on its own copy of the same data.

Run from the repository root with the project's virtualenv active:

    python benchmarks/bench_features_cluster.py [--flights 336776] [--labels 160000]
        [--workers 2] [--partition-rows 250000]

The Dask side starts a local cluster (``--workers`` processes, one thread each) once,
outside the timings, as a cluster a team already runs would be. It also checks that both
engines built the same frame. No target: the issue asks for the same results; this says
what partitioning costs or saves on one machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _flights import SRC, keel, write_project


def _build(root: Path, flights: int, labels: int, partition_rows: int) -> Any:
    import pandas as pd

    write_project(root, flights, labels)
    with (root / "keel.yaml").open("a") as config:
        config.write(f"compute:\n  partition_rows: {partition_rows}\n")
    keel(root, "ingest")
    frame = pd.read_csv(root / "data" / "labels.csv")
    frame["time_hour"] = pd.to_datetime(frame["time_hour"], format="ISO8601")
    return frame


def _timed(root: Path, labels: Any, engine: Any) -> tuple[float, float, Any]:
    from keel.features import FeatureStore
    from keel.features.offline import OfflineStore, _after
    from keel.project import Project

    with Project.open(root) as project:
        store = FeatureStore.open(project)
        offline = OfflineStore(project, store.features, engine)
        until = _after(labels["time_hour"].max())
        started = time.perf_counter()
        for view in store.features.views.values():
            offline.snapshot(view, until)
        snapshots = time.perf_counter() - started
        started = time.perf_counter()
        frame = offline.training_set(labels, "time_hour").frame  # snapshots now cached
        join = time.perf_counter() - started
        store.close()
    return snapshots, join, frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flights", type=int, default=336_776)
    parser.add_argument("--labels", type=int, default=160_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--partition-rows", type=int, default=250_000)
    args = parser.parse_args()
    sys.path.insert(0, SRC)
    import pandas as pd

    from keel.compute.dask import DaskEngine
    from keel.compute.local import LocalEngine

    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        labels = _build(base / "local", args.flights, args.labels, args.partition_rows)
        _build(base / "dask", args.flights, args.labels, args.partition_rows)
        local = _timed(base / "local", labels, LocalEngine())
        engine = DaskEngine.connect(None, 30, workers=args.workers)
        try:
            remote = _timed(base / "dask", labels, engine)
        finally:
            engine.close()
    pd.testing.assert_frame_equal(remote[2], local[2])
    print(f"{args.labels:,} labels, {args.flights:,} flights; the same frame on both engines")
    print(f"{'engine':<24} {'snapshots s':>12} {'join s':>9}")
    print(f"{'local (DuckDB)':<24} {local[0]:>12.2f} {local[1]:>9.2f}")
    print(f"{f'dask, {args.workers} workers':<24} {remote[0]:>12.2f} {remote[1]:>9.2f}")


if __name__ == "__main__":
    main()
