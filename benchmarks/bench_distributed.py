"""Batch scoring of a 1M-row table: the local engine against a Dask cluster of 1 and 2
workers on this machine.

A LogisticRegression on ten numeric features is registered as production; the table is
eight Parquet files. Each run is ``predict_batch`` as ``keel predict --batch`` runs it
(read, validate, score, build the response rows, write the output, commit the prediction
log). The clusters are started before the clock starts and warmed with one small job, so
the table shows the job, not process start-up. Prints one table.

    python benchmarks/bench_distributed.py [--rows 1000000] [--partition-rows 125000]

Targets: dask with 2 workers within 3x of local; 2 workers faster than 1 (on a machine
with at least 2 free cores).
"""

from __future__ import annotations

import argparse
import pickle
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from keel.compute.dask import DaskEngine
from keel.compute.engine import Engine
from keel.compute.local import LocalEngine
from keel.project import Project
from keel.serving.batch_job import predict_batch
from keel.training import deploy, import_model

FEATURES = [f"x{i}" for i in range(10)]
FILES = 8


def frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(rng.normal(0, 1, (rows, len(FEATURES))).round(4), columns=FEATURES)
    data["y"] = (data["x0"] + data["x1"] - data["x2"] + rng.normal(0, 1, rows) > 0).astype(int)
    return data


def make_project(folder: Path, rows: int, partition_rows: int) -> Path:
    root = folder / "project"
    (root / "data").mkdir(parents=True)
    (root / "keel.yaml").write_text(
        f"name: bench\ncompute:\n  partition_rows: {partition_rows}\n"
        "serving:\n  timeout_ms: 60000\n"
    )
    train = frame(5000, 0)
    model = LogisticRegression(max_iter=500).fit(train[FEATURES], train["y"])
    (folder / "model.pkl").write_bytes(pickle.dumps(model))
    train.to_csv(folder / "sample.csv", index=False)
    with Project.open(root) as project:
        version = import_model(project, folder / "model.pkl", folder / "sample.csv", "y", None)
        deploy(project, str(version.version), force=True, reason="benchmark")
    table = frame(rows, 1)[FEATURES]
    for i, part in enumerate(np.array_split(np.arange(rows), FILES)):
        table.iloc[part].to_parquet(root / "data" / f"part-{i}.parquet", index=False)
    warm = root / "warm"
    warm.mkdir()
    table.head(1000).to_parquet(warm / "warm.parquet", index=False)
    return root


def run(root: Path, engine: Engine, table: str, out: Path) -> float:
    started = time.perf_counter()
    with Project.open(root) as project:
        result = predict_batch(project, table, out, engine)
    seconds = time.perf_counter() - started
    assert result.rows > 0
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--partition-rows", type=int, default=125_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="keel-bench-dask-") as folder:
        root = make_project(Path(folder), args.rows, args.partition_rows)
        out = Path(folder) / "out.parquet"
        results = [("local", "-", run(root, LocalEngine(), "data", out))]
        for workers in (1, 2):
            engine = DaskEngine.connect(None, 30, workers)
            try:
                run(root, engine, "warm", out)
                results.append(("dask", str(workers), run(root, engine, "data", out)))
            finally:
                engine.close()
    local = results[0][2]
    print(f"\nbatch scoring of {args.rows:,} rows ({FILES} files, {args.partition_rows:,} rows")
    print("a partition), wall seconds of the job\n")
    print("| engine | workers | seconds | rows/s | vs local |\n|---|---|---|---|---|")
    for name, workers, seconds in results:
        rate = args.rows / seconds
        print(f"| {name} | {workers} | {seconds:.1f} | {rate:,.0f} | {seconds / local:.2f}x |")


if __name__ == "__main__":
    main()
