"""Validation of a partitioned table: one batch on the local engine, against the
partitioned check (per-file checks and mergeable sketches) on the local engine and on a
Dask cluster of 1 and 2 workers on this machine.

The table is ``bench_data.py``'s dirty 20-column batch (about 70 checks), written as
Parquet files. Clusters start before the clock and are warmed with one small job. The
last column says whether the partitioned run's violation counts (summed over files, plus
the cross-file checks) equal the one-batch run's counts for every row check. Prints one
table of medians over ``--runs`` runs, with the load average at the start and the end.
The Dask workers have one thread each, and each task's DuckDB runs on the worker's
threads, so "workers" means cores. ``--sessions`` starts the cluster as separate processes
in sessions of their own: on a shared Linux machine (autogroup) a session gets one share
of the CPU however many processes it runs, so only then does a second worker get CPU of
its own while other sessions keep the machine busy.

    PYTHONPATH=src python benchmarks/bench_validate_distributed.py [--rows 1000000] [--files 8]
        [--runs 3] [--sessions]

Targets (issue 16): 1 -> 2 workers >= 1.6x on the validation job; the Dask engine within
3x of the local engine's wall time.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
from bench_data import build_sql, checks

from keel.compute.dask import DaskEngine
from keel.compute.engine import ShuffleEngine
from keel.compute.local import LocalEngine
from keel.data.batch import Batch
from keel.data.partitioned import PartitionedReport, check_partitioned
from keel.data.partitions import Table
from keel.data.profiling import profile
from keel.data.validation import Context, validate
from keel.schema import SourceConfig

NOW = datetime(2030, 1, 1)


def write_table(folder: Path, rows: int, files: int) -> list[str]:
    """``files`` Parquet files holding bench_data's dirty batch, in row order."""
    paths = []
    with duckdb.connect() as con:
        for i in range(files):
            start, stop = rows * i // files, rows * (i + 1) // files
            select = build_sql(rows, True).replace(f"range({rows})", f"range({start}, {stop})")
            path = folder / f"part-{i:03d}.parquet"
            con.execute(f"COPY ({select}) TO '{path}' (FORMAT parquet)")
            paths.append(str(path))
    return paths


def config(path: str) -> SourceConfig:
    return SourceConfig.model_validate({"kind": "parquet", "path": path, "checks": checks()})


def one_batch(paths: list[str], source: SourceConfig) -> tuple[float, dict[str, int]]:
    listed = "[" + ", ".join(f"'{p}'" for p in paths) + "]"
    started = time.perf_counter()
    with Batch.from_sql(f"SELECT * FROM read_parquet({listed})") as batch:
        report = validate(batch, "bench", source, profile(batch), Context(NOW))
    seconds = time.perf_counter() - started
    return seconds, {f.check: f.violations for f in report.findings if f.rows is not None}


def partitioned(
    engine: ShuffleEngine, paths: list[str], source: SourceConfig
) -> tuple[float, PartitionedReport]:
    started = time.perf_counter()
    report = check_partitioned(engine, "bench", source, Table("parquet", tuple(paths)), NOW)
    return time.perf_counter() - started, report


def counts(report: PartitionedReport) -> dict[str, int]:
    """Violations per row check over the whole table: every file's plus the merge's
    (a check across boundaries adds to the check of the same name)."""
    found: dict[str, int] = {}
    for finding in [f for p in report.partitions for f in p.findings] + list(report.merged):
        if finding.rows is None:
            continue
        name = finding.check.removesuffix(".across_partitions")
        name = name.replace(".unique_across_partitions", ".unique")
        found[name] = found.get(name, 0) + finding.violations
    return found


def same(expected: dict[str, int], got: dict[str, int], unique: set[str]) -> str:
    """Whether every failing count agrees. Uniqueness counts differ by definition (one
    batch counts copies beyond the first; across files every row of a clashing value), so
    they are compared as failing / passing only."""
    wrong = [name for name, n in expected.items() if _differs(n, got.get(name, 0), name in unique)]
    return "yes" if not wrong else "no: " + ", ".join(sorted(wrong))


def _differs(expected: int, got: int, unique: bool) -> bool:
    return bool(expected) != bool(got) if unique else expected != got


def timed(runs: int, job: Callable[[], tuple[float, dict[str, int]]]) -> tuple[float, str]:
    """The median wall seconds of ``runs`` runs of ``job``, and whether every run's counts
    were equal (``job`` returns its seconds and its comparison)."""
    seconds, equal = [], set()
    for _ in range(runs):
        took, found = job()
        seconds.append(took)
        equal.add(str(found))
    return statistics.median(seconds), " / ".join(sorted(equal))


@contextmanager
def cluster(workers: int, sessions: bool) -> Iterator[DaskEngine]:
    """A Dask engine of ``workers`` one-thread workers: Keel's local cluster, or (``sessions``)
    a scheduler and workers started as processes, each in a session of its own. Linux
    shares the CPU between sessions first (autogroup), so on a busy machine the local
    cluster's workers split one session's share and a second worker adds no CPU."""
    if not sessions:
        engine = DaskEngine.connect(None, 30, workers)
        try:
            yield engine
        finally:
            engine.close()
        return
    dask = str(Path(sys.executable).with_name("dask"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    quiet = subprocess.DEVNULL
    scheduler = [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]
    worker = [dask, "worker", address, "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"]
    started = [subprocess.Popen(scheduler, stdout=quiet, stderr=quiet, start_new_session=True)]
    try:
        for _ in range(workers):
            started.append(
                subprocess.Popen(worker, stdout=quiet, stderr=quiet, start_new_session=True)
            )
        engine = DaskEngine.connect(address, 60)
        try:
            engine.client.wait_for_workers(workers, timeout=60)
            yield engine
        finally:
            engine.close()
    finally:
        for process in reversed(started):
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3, help="runs per engine (median shown)")
    parser.add_argument(
        "--sessions",
        action="store_true",
        help="start `dask scheduler` and each `dask worker` as processes in sessions of their "
        "own (as separate machines would be) instead of Keel's local cluster",
    )
    args = parser.parse_args()
    results: list[tuple[str, str, float, str]] = []
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="keel-bench-validate-") as folder:
        paths = write_table(Path(folder), args.rows, args.files)
        source = config(folder)
        _, expected = one_batch(paths, source)  # warm: imports, file cache
        unique = {name for name in expected if name.endswith(".unique")}

        def compared(engine: ShuffleEngine) -> Callable[[], tuple[float, Any]]:
            def job() -> tuple[float, Any]:
                seconds, report = partitioned(engine, paths, source)
                return seconds, same(expected, counts(report), unique)

            return job

        base, _ = timed(args.runs, lambda: (one_batch(paths, source)[0], "-"))
        results.append(("local, one batch", "-", base, "-"))
        seconds, found = timed(args.runs, compared(LocalEngine()))
        results.append(("local, partitioned", "-", seconds, found))
        for workers in (1, 2):
            with cluster(workers, args.sessions) as engine:
                partitioned(engine, paths[:1], source)
                seconds, found = timed(args.runs, compared(engine))
            shown = "dask, workers in own sessions" if args.sessions else "dask, partitioned"
            results.append((shown, str(workers), seconds, found))
    loads.append(os.getloadavg()[0])
    print(f"\nvalidation of {args.rows:,} rows x 20 columns in {args.files} Parquet files")
    print(f"(median wall seconds of {args.runs} runs; load average {loads[0]:.2f} at the start, ")
    print(f"{loads[1]:.2f} at the end, on {os.cpu_count()} cores; Dask workers of 1 thread)\n")
    print("| engine | workers | seconds | vs one batch | counts equal |\n|---|---|---|---|---|")
    for name, workers, seconds, equal in results:
        print(f"| {name} | {workers} | {seconds:.2f} | {seconds / base:.2f}x | {equal} |")
    one, two = results[-2][2], results[-1][2]
    print(f"\n1 -> 2 workers: {one / two:.2f}x")


if __name__ == "__main__":
    main()
