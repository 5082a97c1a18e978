"""Benchmark the training layer; prints one table of medians.

1. ``keel status --json`` wall time including interpreter start, on an empty registry and
   with 100,000 registered versions (target: <= 0.5 s both), on SQLite and, when it
   answers, PostgreSQL, with the CPU time (user + system) of each, which is what to
   compare on a loaded machine. Production models carry a run record the size of a 50-feature
   model trained on 200 data versions (status reads its data lineage).
2. Training overhead beyond the estimator's own fit on 100,000 rows (target: <= 20%):
   ``train()`` total minus fit, over fit, gate excluded (the gate is timed separately).
3. Reading a source for training (``training.data: SOURCE``): the same rows published as
   10 data versions, read back by ``keel.data.access.read_published``; one CSV read by
   pandas for scale.

Run from the repository root:

    PYTHONPATH=src python benchmarks/bench_training.py [--versions 100000] [--rows 100000]
        [--only status|training]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
import sqlalchemy as sa

from keel.project import Project
from keel.schema import GateConfig
from keel.training.gating import run_gate
from keel.training.pipeline import train
from keel.training.registry import Registry
from keel.training.tables import model_events, model_records, model_versions

SRC = str(Path(__file__).resolve().parents[1] / "src")
PG = os.environ.get("KEEL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
TRAINING = """\
training:
  data: data/train.csv
  target: churned
  model:
    estimator: sklearn.ensemble.HistGradientBoostingClassifier
    params: {max_iter: 100}
  split: {by: random, test_size: 0.2}
  seed: 1
"""
POLICY = GateConfig.model_validate(
    {"thresholds": {"roc_auc": ">= 0.6"}, "latency_p99_ms": 100, "max_size_mb": 50}
)


FAST = "import sys\nfrom keel.training.status import run_status\nsys.exit(run_status(sys.argv[1:]))"


def status_seconds(root: Path, runs: int, fast: bool = False) -> tuple[float, float]:
    """Median wall time, and median CPU time (user + system), of `keel status --json` in a
    fresh interpreter. CPU time is what to compare on a loaded machine, where wall time
    mostly measures the wait for a core.

    ``fast`` runs the framework-free entry (``keel.training.status.run_status``) directly;
    ``python -m keel status --json`` dispatches to it before building the Typer app
    (``keel.cli.entry``), so the two differ by the dispatch alone.
    """
    env = {**os.environ, "PYTHONPATH": SRC}
    entry = ["-c", FAST] if fast else ["-m", "keel", "status"]
    command = [sys.executable, *entry, "--json", "--project", str(root)]
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def baseline(runs: int) -> float:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def fill_registry(project: Project, versions: int) -> None:
    """Insert ``versions`` rows (and their registration events) in bulk; deploy a few."""
    metrics = json.dumps({"roc_auc": 0.8, "accuracy": 0.75})
    rows = [
        {
            "name": "bench",
            "source": "train",
            "status": "candidate",
            "status_at": 1.0 + i,
            "created_at": 1.0 + i,
            "created_by": "bench",
            "artifact": f"{i:064x}",
            "size_bytes": 1000,
            "config_hash": "0" * 64,
            "data_ref": f"file:data/{i}.csv",
            "data_rows": 1000,
            "data_start": None,
            "data_end": None,
            "metrics": metrics,
            "duration_s": 1.0,
            "gate_passed": True,
        }
        for i in range(versions)
    ]
    with project.store.begin() as connection:
        for low in range(0, versions, 10_000):
            connection.execute(model_versions.insert(), rows[low : low + 10_000])
        events = [
            {
                "version": v,
                "from_status": None,
                "to_status": "candidate",
                "at": 1.0,
                "actor": "bench",
                "reason": "registered",
                "forced": False,
            }
            for v in range(1, versions + 1)
        ]
        for low in range(0, versions, 10_000):
            connection.execute(model_events.insert(), events[low : low + 10_000])
    deployed = (versions // 3, versions // 2, versions - 1)
    with project.store.begin() as connection:  # status reads production's data lineage
        connection.execute(
            model_records.insert(), [{"version": v, "record": run_record()} for v in deployed]
        )
    registry = Registry(project.store)
    for version in deployed:
        registry.transition(version, "production", "bench", "benchmark")
    registry.transition(versions, "shadow", "bench", "benchmark")


def run_record(features: int = 50, versions: int = 200) -> str:
    """A run record the size of a 50-feature model's, trained on 200 data versions."""
    stats = {"mean": 0.5, "std": 0.1, "quantiles": [i / 14 for i in range(15)], "nulls": 0}
    lineage = {
        "source": "events",
        "versions": [{"id": f"{i:064x}", "rows": 1000} for i in range(versions)],
        "rows": 1000 * versions,
        "timestamp": "event_time",
        "start": "2024-01-01 00:00:00",
        "end": "2024-12-31 23:00:00",
    }
    record = {
        "data": {"ref": "events@" + "0" * 12, "rows": 1000 * versions, "lineage": lineage},
        "reference": {"features": {f"x{i}": stats for i in range(features)}},
        "schema": [{"name": f"x{i}", "type": "float"} for i in range(features)],
    }
    return json.dumps(record)


def project_at(folder: Path, store: str | None, body: str = "") -> Project:
    folder.mkdir(parents=True, exist_ok=True)
    store_line = f"store: '{store}'\n" if store else ""
    (folder / "keel.yaml").write_text(f"name: bench\n{store_line}{body}")
    return Project.open(folder)


def bench_status(base: Path, store: str | None, label: str, versions: int, runs: int) -> list[Any]:
    with project_at(base / label, store) as project:
        project.store.ping()
        empty = status_seconds(project.root, runs)
        fill_registry(project, versions)
        full = status_seconds(project.root, runs)
        fast = status_seconds(project.root, runs, fast=True)
        start = time.perf_counter()
        Registry(project.store).versions(limit=20)
        listing = time.perf_counter() - start
    return [
        (f"keel status --json, empty registry ({label})", empty[0], "<= 0.5 s"),
        ("  CPU time (user + system) of the same", empty[1], ""),
        (f"keel status --json, {versions:,} versions ({label})", full[0], "<= 0.5 s"),
        ("  CPU time (user + system) of the same", full[1], ""),
        (f"  same, framework-free entry run_status ({label})", fast[0], "<= 0.5 s"),
        ("  CPU time (user + system) of the same", fast[1], ""),
        (f"registry list (20 newest), {versions:,} versions ({label}, in process)", listing, ""),
    ]


def training_frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {f"x{i}": rng.normal(size=rows).round(4) for i in range(8)}
        | {"region": rng.choice(["north", "south", "east", "west"], rows)}
    )
    logit = frame["x0"] + 0.5 * frame["x1"] - 0.3 * frame["x2"] + (frame["region"] == "north")
    frame["churned"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


MODELS = {
    "HistGradientBoosting, 100 iterations": "{max_iter: 100, early_stopping: false}",
    "HistGradientBoosting, defaults (early stopping)": "{}",
}


def bench_training(base: Path, rows: int, runs: int) -> list[Any]:
    folder = base / "train"
    (folder / "data").mkdir(parents=True)
    training_frame(rows).to_csv(folder / "data" / "train.csv", index=False)
    results: list[Any] = []
    for label, params in MODELS.items():
        (folder / "keel.yaml").write_text(
            "name: bench\n" + TRAINING.replace("{max_iter: 100}", params)
        )
        with Project.open(folder) as project:
            results += _time_training(project, label, rows, runs)
    return results


def _time_training(project: Project, label: str, rows: int, runs: int) -> list[Any]:
    reads, fits, scores, totals, gates = [], [], [], [], []
    for _ in range(runs):
        version = train(project).version
        record = Registry(project.store).record(version.version)
        reads.append(record["duration_s"]["read"])
        fits.append(record["duration_s"]["fit"])
        scores.append(record["duration_s"]["score"])
        totals.append(record["duration_s"]["total"])
        start = time.perf_counter()
        run_gate(project, version.version, POLICY)
        gates.append(time.perf_counter() - start)
    fit, total, read = statistics.median(fits), statistics.median(totals), statistics.median(reads)
    score = statistics.median(scores)
    rest = [t - f - r - s for t, f, r, s in zip(totals, fits, reads, scores, strict=True)]
    bookkeeping = statistics.median(rest)
    return [
        (f"estimator fit, {rows:,} rows ({label})", fit, ""),
        ("  keel train total (read, split, fit, score, record), gate excluded", total, ""),
        ("  training overhead beyond fit", f"{(total - fit) / fit:.1%}", "<= 20%"),
        ("  of which reading the CSV", read, ""),
        ("  of which scoring held-out rows (predict, metrics, references)", score, ""),
        ("  the rest: split, schema, pickle, Parquet, provenance", bookkeeping, ""),
        ("  overhead beyond fit, read and scoring", f"{bookkeeping / fit:.1%}", ""),
        ("  gate (latency measurement, reload, slices)", statistics.median(gates), ""),
    ]


def bench_source_read(base: Path, rows: int, versions: int, runs: int) -> list[Any]:
    """Training's read of a source published as ``versions`` files, vs one CSV by pandas."""
    from keel.data.access import read_published
    from keel.data.ingestion import ingest

    folder = base / "source"
    (folder / "data" / "events").mkdir(parents=True)
    (folder / "keel.yaml").write_text(
        "name: bench\nsources:\n  events:\n    kind: csv\n    path: data/events/*.csv\n"
    )
    frame = training_frame(rows)
    with Project.open(folder) as project:
        for index, rows_of in enumerate(np.array_split(np.arange(rows), versions)):
            part = folder / "data" / "events" / f"part-{index:03d}.csv"
            frame.iloc[rows_of].to_csv(part, index=False)
            ingest(project, "events")
        source = _median(runs, lambda: read_published(project, "events"))
    frame.to_csv(folder / "whole.csv", index=False)
    whole = _median(runs, lambda: pd.read_csv(folder / "whole.csv"))
    return [
        (f"read a source of {versions} live versions, {rows:,} rows (read_published)", source, ""),
        ("  the same rows from one CSV (pandas.read_csv), for scale", whole, ""),
    ]


def _median(runs: int, work: Any) -> float:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def drop_schema(url: str) -> None:
    schema = url.rsplit("%3D", 1)[-1]
    engine = sa.create_engine(PG.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def postgres_url() -> str | None:
    try:
        engine = sa.create_engine(PG.replace("postgresql://", "postgresql+psycopg://"))
        schema = f"keel_bench_{uuid.uuid4().hex[:8]}"
        with engine.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
    except Exception:
        return None
    return f"{PG}?options=-csearch_path%3D{schema}"


def bench_both_stores(base: Path, versions: int, runs: int) -> list[Any]:
    results = bench_status(base, None, "SQLite", versions, runs)
    pg = postgres_url()
    if pg is not None:
        try:
            results += bench_status(base, pg, "PostgreSQL", versions, runs)
        finally:
            drop_schema(pg)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--source-versions", type=int, default=10)
    parser.add_argument(
        "--only", choices=("status", "training"), help="Run only the status or training part."
    )
    args = parser.parse_args()
    results: list[Any] = [
        ("python -c pass (interpreter start, for scale)", baseline(args.runs), "")
    ]
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        if args.only in (None, "status"):
            results += bench_both_stores(base, args.versions, args.runs)
        if args.only in (None, "training"):
            results += bench_training(base, args.rows, 3)
            results += bench_source_read(base, args.rows, args.source_versions, args.runs)
    load = os.getloadavg()[0]
    print(
        f"{'measure':<72} {'median':>10}  target   (load average {load:.1f}, {os.cpu_count()} CPUs)"
    )
    for name, value, target in results:
        shown = f"{value:.3f} s" if isinstance(value, float) else value
        print(f"{name:<72} {shown:>10}  {target}")


if __name__ == "__main__":
    main()
