"""The 100M-row target: ``keel ingest`` of a partitioned Parquet table (bench_data's dirty
20-column batch, 1M rows a file) on a Dask cluster of 2 workers limited to 2 GB each.

The table is generated with DuckDB (``COPY ... TO``, one file at a time; timestamps start
in 2000 so ``not_future`` does not depend on the clock). A ``dask scheduler`` and two
``dask worker --memory-limit 2GB --nthreads 1`` processes (each with its nanny) start on
loopback; a throwaway project whose source is ``partitioned: true`` and whose
``compute:`` points at the scheduler runs ``keel ingest --json`` (which checks every
partition on the cluster, merges, and publishes or quarantines: the data is dirty, so it
quarantines). While it runs, every worker process's RSS is sampled every 0.2 s (psutil);
the peak must stay under the limit, and no worker may have been restarted. Then the same
checks run on the local engine, one file at a time (``check_partition``; the uniqueness
of ``id`` across files by SQL over the files themselves); every check's violation count
in the ingest's report must equal the local one. Prints one table.

    # quick check (1M rows, 1 file)
    PYTHONPATH=src python benchmarks/bench_hundred_million.py --rows 1000000
    # the target: 100M rows, 100 files, about 7 GB of Parquet under /work/bigdata
    nice -n 19 env PYTHONPATH=src python benchmarks/bench_hundred_million.py \\
        --rows 100000000 --folder /work/bigdata

Run it under ``nice``: the workers and the ingest inherit it. On a busy machine,
``--alongside`` runs the local reference in a second process during the ingest.
``--keep`` leaves the generated files in ``--folder`` (a later run with the same
``--rows`` reuses them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import psutil
import yaml
from bench_data import build_sql, checks

from keel.compute.local import LocalEngine
from keel.data.partitioned import (
    PartitionCheck,
    PartitionedReport,
    Shared,
    check_partition,
    merge_partitions,
    per_partition,
)
from keel.schema import SourceConfig

BIN = Path(sys.executable).parent
SRC = Path(__file__).resolve().parents[1] / "src"
NOW = datetime(2030, 1, 1)


def write_table(folder: Path, rows: int, per_file: int) -> list[Path]:
    """The dirty batch in files of ``per_file`` rows, in row order; a file already there
    (from an earlier run with the same sizes) is kept."""
    folder.mkdir(parents=True, exist_ok=True)
    files = -(-rows // per_file)
    paths = []
    started = time.perf_counter()
    with duckdb.connect() as con:
        for i in range(files):
            start, stop = i * per_file, min(rows, (i + 1) * per_file)
            path = folder / f"part-{i:05d}.parquet"
            paths.append(path)
            if path.exists():
                continue
            select = build_sql(rows, True).replace(f"range({rows})", f"range({start}, {stop})")
            select = select.replace("TIMESTAMP '2025-01-01'", "TIMESTAMP '2000-01-01'")
            partial = path.with_suffix(".partial")
            con.execute(f"COPY ({select}) TO '{partial}' (FORMAT parquet)")
            partial.rename(path)
            if (i + 1) % 10 == 0:
                elapsed = time.perf_counter() - started
                print(f"  wrote {i + 1}/{files} files ({elapsed:.0f} s)", flush=True)
    return paths


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    """``dask scheduler`` and ``workers`` x ``dask worker`` (with nannies) on loopback,
    started and stopped by pid."""

    def __init__(self, workers: int, limit: str, folder: Path) -> None:
        self.address = f"tcp://127.0.0.1:{free_port()}"
        port = self.address.rsplit(":", 1)[1]
        env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
        self.logs = [open(folder / "scheduler.log", "wb")]  # noqa: SIM115 - closed in stop
        scheduler = [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", port]
        self.scheduler = subprocess.Popen(
            [*scheduler, "--no-dashboard"], stdout=self.logs[0], stderr=subprocess.STDOUT, env=env
        )
        self.workers = []
        for i in range(workers):
            self.logs.append(open(folder / f"worker-{i}.log", "wb"))  # noqa: SIM115
            command = [str(BIN / "dask"), "worker", self.address, "--memory-limit", limit]
            command += ["--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard"]
            command += ["--local-directory", str(folder / f"worker-{i}")]
            self.workers.append(
                subprocess.Popen(command, stdout=self.logs[-1], stderr=subprocess.STDOUT, env=env)
            )
        from distributed import Client

        try:
            with Client(self.address, timeout=90, set_as_default=False) as client:
                client.wait_for_workers(workers, timeout=90)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        processes = [*self.workers, self.scheduler]
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        for log in self.logs:
            log.close()


class Sampler(threading.Thread):
    """Every 0.2 s: the RSS of each nanny's worker process (and of ``client``, once set);
    keeps the peaks and every worker pid seen (more than one per nanny: a restart)."""

    def __init__(self, nannies: list[int]) -> None:
        super().__init__(daemon=True)
        self.nannies = [psutil.Process(pid) for pid in nannies]
        self.peak = [0] * len(nannies)
        self.pids: list[set[int]] = [set() for _ in nannies]
        self.client: psutil.Process | None = None
        self.client_peak = 0
        self.samples = 0
        self.done = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        while not self.done.wait(0.2):
            self.samples += 1
            if self.samples % 300 == 0:  # a line a minute, so a run cut short still tells
                peaks = " / ".join(_mb(peak) for peak in self.peak)
                print(
                    f"  {time.monotonic() - started:.0f} s: worker peak RSS {peaks} MB, "
                    f"ingest process peak {_mb(self.client_peak)} MB",
                    flush=True,
                )
            for i, nanny in enumerate(self.nannies):
                for child in _workers(nanny):
                    self.pids[i].add(child.pid)
                    self.peak[i] = max(self.peak[i], _rss(child))
            if self.client is not None:
                tree = [self.client, *_children(self.client)]
                self.client_peak = max(self.client_peak, sum(_rss(p) for p in tree))


def _children(process: psutil.Process) -> list[psutil.Process]:
    try:
        return list(process.children(recursive=True))
    except psutil.Error:
        return []


def _workers(nanny: psutil.Process) -> list[psutil.Process]:
    """The nanny's worker process (not multiprocessing's resource tracker)."""
    found = []
    for child in _children(nanny):
        try:
            if any("spawn_main" in part for part in child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


def _rss(process: psutil.Process) -> int:
    try:
        return int(process.memory_info().rss)
    except psutil.Error:
        return 0


def make_project(root: Path, data: Path, address: str) -> None:
    root.mkdir(parents=True)
    source = {"kind": "parquet", "path": str(data), "partitioned": True, "checks": checks()}
    config = {
        "name": "bench",
        "compute": {"engine": "dask", "address": address, "connect_timeout": "60s"},
        "sources": {"big": source},
    }
    (root / "keel.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def ingest(root: Path, sampler: Sampler) -> tuple[float, dict[str, Any]]:
    """``keel ingest --json`` in ``root``: its wall seconds and its one run."""
    command = [str(BIN / "keel"), "ingest", "--json", "--project", str(root)]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    sampler.client = psutil.Process(process.pid)
    out, err = process.communicate()
    seconds = time.perf_counter() - started
    sampler.client = None
    if not out.strip():
        said = err.decode()[-2000:]
        raise SystemExit(f"keel ingest printed nothing (exit {process.returncode}):\n{said}")
    (run,) = json.loads(out)["runs"]
    return seconds, dict(run)


def ingest_counts(run: dict[str, Any]) -> dict[str, int]:
    """Violations per check in the ingest's report, summed over partitions."""
    found: dict[str, int] = {}
    for finding in (run.get("report") or {}).get("findings", []):
        found[finding["check"]] = found.get(finding["check"], 0) + int(finding["violations"])
    return found


def local_counts(report: PartitionedReport) -> dict[str, int]:
    found: dict[str, int] = {}
    for finding in [f for p in report.partitions for f in p.findings] + list(report.merged):
        found[finding.check] = found.get(finding.check, 0) + finding.violations
    return found


def reference(paths: list[Path], folder: Path) -> tuple[float, dict[str, int]]:
    """The same checks on the local engine, one file after another, in this process
    (``check_partition`` on ``LocalEngine``, then ``merge_partitions``), with the clock
    fixed (the data holds no future timestamp, so it changes nothing). The uniqueness of
    ``id`` across files is counted apart, by SQL over the files themselves (every row
    whose id another file also holds)."""
    config = SourceConfig.model_validate(
        {"kind": "parquet", "path": str(paths[0].parent), "checks": checks()}
    )
    shared = Shared("big", per_partition(config), NOW, {})
    pairs = [(str(p), str(p)) for p in paths]
    started = time.perf_counter()
    done: dict[int, PartitionCheck] = {}
    for position, result in LocalEngine().map(check_partition, shared, pairs):
        done[position] = result
    parts = tuple(done[i] for i in range(len(paths)))
    report = merge_partitions(config, {"rows": sum(p.rows for p in parts)}, parts, NOW)
    found = local_counts(report)
    found["id.unique_across_partitions"] = across_files(paths, folder)
    return time.perf_counter() - started, found


def across_files(paths: list[Path], folder: Path) -> int:
    """Rows whose id is also held by another file, by DuckDB over the Parquet files
    (spilling to ``folder`` past 2 GB)."""
    listed = "[" + ", ".join(f"'{p}'" for p in paths) + "]"
    folder.mkdir(parents=True, exist_ok=True)
    with duckdb.connect() as con:
        con.execute(f"SET memory_limit = '2GB'; SET temp_directory = '{folder / 'spill'}'")
        con.execute(
            f"CREATE VIEW t AS SELECT id, filename FROM read_parquet({listed}, filename = true)"
            " WHERE id IS NOT NULL"
        )
        rows, buckets = 0, len(paths) // 8 + 1  # about 8M ids at once fit in 2 GB
        for bucket in range(buckets):
            found = con.execute(
                "SELECT count(*) FROM t WHERE hash(id) % $1 = $2 AND id IN (SELECT id FROM "
                "(SELECT DISTINCT id, filename FROM t WHERE hash(id) % $1 = $2) GROUP BY id "
                "HAVING count(*) > 1)",
                [buckets, bucket],
            ).fetchone()
            rows += int(found[0]) if found else 0
    return rows


def compare(expected: dict[str, int], got: dict[str, int]) -> list[str]:
    names = sorted(set(expected) | set(got))
    return [n for n in names if expected.get(n, 0) != got.get(n, 0)]


def _mb(value: float) -> str:
    return f"{value / 1e6:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--file-rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="2GB")
    parser.add_argument("--folder", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--no-reference", action="store_true", help="skip the local run")
    parser.add_argument(
        "--alongside",
        action="store_true",
        help="run the local reference in another process during the ingest (a busy machine)",
    )
    parser.add_argument("--reference-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reference_only is not None:  # the child of --alongside: counts as JSON
        paths = sorted(args.reference_only.glob("part-*.parquet"))
        seconds, found = reference(paths, args.reference_only.parent / "run-reference")
        print(json.dumps({"seconds": seconds, "counts": found}))
        return
    folder = args.folder or Path(tempfile.mkdtemp(prefix="keel-bench-100m-"))
    data = folder / f"data-{args.rows}-{args.file_rows}"
    work = folder / "run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    limit = int(float(args.memory_limit.upper().removesuffix("GB")) * 1e9)
    alongside: subprocess.Popen[bytes] | None = None
    try:
        print(f"generating {args.rows:,} rows in {data}", flush=True)
        started = time.perf_counter()
        paths = write_table(data, args.rows, args.file_rows)
        generated = time.perf_counter() - started
        size = sum(p.stat().st_size for p in paths)
        print(f"  {len(paths)} files, {size / 1e9:.2f} GB, {generated:.0f} s", flush=True)
        if args.alongside and not args.no_reference:
            command = [sys.executable, __file__, "--reference-only", str(data)]
            alongside = subprocess.Popen(command, stdout=subprocess.PIPE)
        cluster = Cluster(args.workers, args.memory_limit, work)
        sampler = Sampler([w.pid for w in cluster.workers])
        sampler.start()
        try:
            make_project(work / "project", data, cluster.address)
            print("keel ingest on the cluster ...", flush=True)
            seconds, run = ingest(work / "project", sampler)
        finally:
            sampler.done.set()
            sampler.join()
            cluster.stop()
        print(f"  {run['status']} in {seconds:.0f} s: {run['message'][:200]}", flush=True)
        peaks = " / ".join(_mb(peak) for peak in sampler.peak)
        print(f"  worker peak RSS {peaks} MB; violations {ingest_counts(run)}", flush=True)
        load = os.getloadavg()
        expected: dict[str, int] | None = None
        local = float("nan")
        if alongside is not None:
            print("waiting for the local engine's run ...", flush=True)
            out, _ = alongside.communicate()
            answer = json.loads(out)
            local, expected = float(answer["seconds"]), dict(answer["counts"])
        elif not args.no_reference:
            print("the same checks on the local engine ...", flush=True)
            local, expected = reference(paths, work)
    finally:
        if alongside is not None and alongside.poll() is None:
            alongside.kill()
            alongside.wait()
        shutil.rmtree(folder / "run-reference", ignore_errors=True)
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
        if args.folder is None and not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    got = ingest_counts(run)
    wrong = None if expected is None else compare(expected, got)
    restarts = sum(len(p) - 1 for p in sampler.pids)
    print(
        f"\nkeel ingest of {args.rows:,} rows x 20 columns in {len(paths)} Parquet files "
        f"({size / 1e9:.1f} GB), {args.workers} Dask workers at --memory-limit "
        f"{args.memory_limit} --nthreads 1\n"
    )
    print("| figure | value |\n|---|---|")
    print(f"| ingest wall seconds | {seconds:.0f} |")
    print(f"| ingest rows/s | {args.rows / seconds:,.0f} |")
    print(f"| ingest status | {run['status']} |")
    for i, peak in enumerate(sampler.peak):
        print(f"| worker {i} peak RSS (MB) | {_mb(peak)} ({peak / limit:.0%} of the limit) |")
    print(f"| worker restarts | {restarts} |")
    print(f"| keel ingest process peak RSS (MB) | {_mb(sampler.client_peak)} |")
    print(f"| RSS samples | {sampler.samples} |")
    print(f"| local engine, one file at a time, seconds | {local:.0f} |")
    checked = "not run" if wrong is None else ("yes" if not wrong else "no: " + ", ".join(wrong))
    print(f"| every check's violations equal the local engine's | {checked} |")
    failing = {name: n for name, n in sorted(got.items()) if n}
    print(f"| checks with violations (ingest) | {len(failing)} |")
    print(f"| load average after the ingest | {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} |")
    print("\nviolations per failing check (ingest / local):")
    for name, n in failing.items():
        print(f"  {name}: {n:,} / {(expected or {}).get(name, '-')}")
    under = all(peak < limit for peak in sampler.peak)
    if not under or restarts or wrong:
        raise SystemExit("target missed: see the table")


if __name__ == "__main__":
    main()
